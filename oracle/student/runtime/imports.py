"""Imports a submission may not make: the rule, and the run-time guard inside the worker.

A submission that imports the reference implementation (refimpl, or oracle,
which contains it) or an automatic-differentiation package (torch, jax,
tensorflow, autograd) computes no gradient of its own. The grader finds such
imports statically (oracle.student.imports scans the submission's files) and
the worker refuses them at run time, so that a name built at run time
("ref" + "impl") is refused as well. An assignment may allow a package
explicitly (``--allow-import torch``); refimpl and oracle can never be allowed.
"""

from __future__ import annotations

import sys

FORBIDDEN = {
    "refimpl": "uses the reference implementation",
    "oracle": "uses the reference implementation",
    "torch": "uses an automatic-differentiation package",
    "jax": "uses an automatic-differentiation package",
    "tensorflow": "uses an automatic-differentiation package",
    "autograd": "uses an automatic-differentiation package",
}
NEVER_ALLOWED = ("refimpl", "oracle")
REFUSAL = "import of {name!r} is not allowed: {why}: not allowed"  # the grader recognises this text


def refusal(name):
    """The message for a refused import of top-level package ``name``."""
    return REFUSAL.format(name=name, why=FORBIDDEN[name])


def forbidden(allowed=()):
    """Top-level names refused, given the packages an assignment allows."""
    return {n for n in FORBIDDEN if n not in set(allowed) - set(NEVER_ALLOWED)}


class ImportGuard:
    """A meta-path finder that refuses the forbidden packages and remembers each attempt."""

    def __init__(self, names):
        self.names = frozenset(names)
        self.attempts = []

    def find_spec(self, fullname, path=None, target=None):
        top = fullname.partition(".")[0]
        if top in self.names:
            if top not in self.attempts:
                self.attempts.append(top)
            raise ImportError(refusal(top), name=fullname)
        return None

    def install(self):
        sys.meta_path.insert(0, self)
        for name in list(sys.modules):  # nothing forbidden is loaded already
            if name.partition(".")[0] in self.names:
                del sys.modules[name]
        return self
