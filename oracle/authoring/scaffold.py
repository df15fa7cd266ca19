"""``new KIND NAME``: a commented case file to start a new worked example from.

It is written to ./cases/NAME.yaml of the current folder (created if needed), or to the
path given with -o; never into the installed package, never over an existing file.

Every field is explained in a comment and every given input has a
placeholder value, so the new file validates and solves at once; replace
the placeholders with the example's numbers.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from oracle.authoring.validate import SCHEMA_LINE, SCHEMA_PATH

HEADER = """{schema_line}
# A {what} case. Field by field: docs/case-format.md. Check it with `backprop-oracle validate {path}`,
# get its answer key with `backprop-oracle solve {path} --write`, its worked solution with `explain`.
title: {title}                  # one line: what the example is
source:
  document: my_notes.txt        # the document (seed file) the example comes from
  heading: My slide heading     # the slide heading it sits under
  instance: our own example     # say so when the numbers are not printed in a document
"""

NETWORK = """kind: network
convention: column              # column: z = W a + b, W of shape (out, in); row: h = x W + b, W (in, out)
layers:                         # layer 1, 2, ... (a^0 = x); W exactly as printed, a list of rows
  - W: {W1}
    b: {b1}                     # one bias per unit; omit (or null) for a layer without bias
    activation: sigmoid         # identity, sigmoid, tanh, relu, leaky_relu, prelu, swish, softmax, log_softmax
  - W: {W2}
    b: {b2}
    activation: sigmoid
loss: {{name: squared_error, factor: 0.5, reduction: mean}}   # C = ½ Σ (a − y)²; factor 1 for Σ (a − y)²
x: {x}                          # one example as a flat list; several: a matrix (n0 × N, one column each)
y: {y}                          # the target, shaped like the output
"""

FORWARD_EXPECT = """expect: {}                      # printed values: z[1], a[1], z[2], a[2], C (decimals as printed)
"""
BACKPROP_EXPECT = (
    "expect: {}                      # printed values: dC/da[2], delta[2], dC/dW[2], dC/db[2], delta[1], ...\n"
)

KINDS = {
    "activation": """kind: activation
activation: softmax             # or {name: leaky_relu, param: 0.1}
z: [2.0, 1.0, -1.0]             # the pre-activations: a number, a vector or a matrix
expect: {}                      # printed values, e.g. a: [0.71, 0.26, 0.04] (decimals as printed)
""",
    "loss": """kind: loss
loss: {name: cross_entropy, factor: 1, reduction: mean}   # squared_error, mse, mae, binary_cross_entropy, cross_entropy
a: [0.7, 0.2, 0.1]              # the network's output (probabilities for the cross-entropies)
y: [1, 0, 0]                    # the target
expect: {}                      # printed values: C (the cost), dC/da (its gradient)
""",
    "forward": NETWORK.format(
        W1="[[0.1, 0.2], [0.3, 0.4]]", b1="[0.0, 0.0]", W2="[[0.5, 0.6]]", b2="[0.0]", x="[1.0, 0.5]", y="[1.0]"
    )
    + FORWARD_EXPECT,
    "backprop": NETWORK.format(
        W1="[[0.1, 0.2], [0.3, 0.4]]", b1="[0.0, 0.0]", W2="[[0.5, 0.6]]", b2="[0.0]", x="[1.0, 0.5]", y="[1.0]"
    )
    + BACKPROP_EXPECT,
    "gradient-descent": NETWORK.format(
        W1="[[0.1, 0.2], [0.3, 0.4]]", b1="[0.0, 0.0]", W2="[[0.5, 0.6]]", b2="[0.0]", x="[1.0, 0.5]", y="[1.0]"
    )
    + """gradient_descent:
  eta: 0.5                      # the learning rate η
  steps: 3                      # steps in a row; quantities of step t ≥ 2 are written C@2, W[1]'@3, ...
  frozen: []                    # parameters not updated, e.g. [b1, b2]
expect: {}                      # printed values: C, W[1]' (after step 1), C@2, W[1]'@2, ...
""",
    "graph": """kind: graph
inputs: {x: -2, y: 5, z: -4}    # the input values
graph:                          # one gate per line, in order; the last one is the output f
  q: x + y                      # + - * / ^ (also · × **), exp(), log(), sigmoid(), tanh(), relu(), ...
  f: q * z
perturbations:                  # optional: "increase q by 1" rows: f(q+1), Δf(q+1)
  - {q: 1}
expect: {}                      # printed values: q, f, df/dx, df/dq, ... (decimals as printed)
""",
    "jacobian": """kind: jacobian
convention: column              # z = W x + b
W: [[1.0, 2.0], [3.0, 4.0]]     # the layer's weights, (out, in)
b: [0.5, -0.5]                  # optional
x: [1.0, -1.0]                  # one example
expect: {}                      # printed values: dz/dx (out × in), dz/dW ([i, p, q] = ∂z_i/∂W_pq)
""",
}


NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def new_case_path(name, output=None):
    """Where ``new KIND NAME`` writes: ./cases/NAME.yaml of the current folder, or ``output`` (a file, or a
    folder to put NAME.yaml in). Never the installed package's own cases/.

    ValueError for a name that is not a plain file name (no folders, no leading dot, no control characters).
    """
    stem = name[:-5] if name.endswith(".yaml") else name[:-4] if name.endswith(".yml") else name
    if not NAME.fullmatch(stem):
        raise ValueError(
            f"{name!r} is not a case name: use letters, digits, _ . and - (no folders; -o PATH writes anywhere)"
        )
    if output is None:
        return Path("cases") / f"{stem}.yaml"
    out = Path(output)
    if out.is_dir() or str(output).endswith(("/", os.sep)):
        return out / f"{stem}.yaml"
    return out


def write_new(path, text):
    """Create ``path`` with ``text`` (and its folder if needed); an existing file — or a symbolic link,
    even a dangling one — is never overwritten or followed (FileExistsError, with the path)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except FileExistsError:
        raise FileExistsError(f"{path}: exists; not overwritten") from None
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def scaffold(kind, path):
    """The text of a new case file of ``kind`` to be written at ``path``."""
    path = Path(path)
    rel = os.path.relpath(SCHEMA_PATH, path.resolve().parent)
    head = HEADER.format(schema_line=SCHEMA_LINE + rel, what=kind, path=path, title=path.stem.replace("_", " "))
    return head + KINDS[kind]
