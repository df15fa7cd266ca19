"""The engines the harness compares, all behind refimpl's interface, and the rule of their agreement.

An engine is any object or module with the functions listed in refimpl's
docstring (a function it lacks, or that raises NotImplementedError, is a
quantity it does not provide), a ``name`` and a ``tolerance`` (rtol, atol):
how closely it is expected to agree with an exact computation (an engine
whose accuracy depends on the size of the cost has ``tolerance_for(cost)``
as well). Engines are values: nothing here looks at an engine's name.

Two engines agree on a value when they are within the larger of their
tolerances (``agree``): |u − v| ≤ rtol·max(|u|, |v|) + atol. The report
(oracle.verdict.compare) and the fuzzer (oracle.testing.fuzz) both use it.
"""

from __future__ import annotations

import numpy as np

import refimpl
from oracle.engines.finite_diff import FiniteDifferences

ENGINE_RTOL, ENGINE_ATOL = refimpl.tolerance  # float64 engines: relative agreement, absolute floor near 0
FLOAT32_TOL = (1e-4, 1e-6)  # precision: float32 — ε₃₂ = 1.2e-7, grown by sums over widths and layers


def tolerance(engine):
    """(rtol, atol) of an engine: its own ``tolerance``; float64's for an engine that states none
    (an implementation under test)."""
    return tuple(getattr(engine, "tolerance", None) or (ENGINE_RTOL, ENGINE_ATOL))


def joint(tol_u, tol_v):
    """The tolerance two engines agree to: the larger of their (rtol, atol)."""
    return max(tol_u[0], tol_v[0]), max(tol_u[1], tol_v[1])


def agree(u, v, tol_u, tol_v=None):
    """Whether u and v (numbers or arrays, elementwise) agree: |u − v| ≤ rtol·max(|u|, |v|) + atol
    with (rtol, atol) the larger of the two tolerances. A value that is not finite agrees with nothing."""
    rtol, atol = joint(tol_u, tol_u if tol_v is None else tol_v)
    u, v = np.asarray(u, dtype=float), np.asarray(v, dtype=float)
    with np.errstate(invalid="ignore", over="ignore"):
        return (np.abs(u - v) <= rtol * np.maximum(np.abs(u), np.abs(v)) + atol) & np.isfinite(u) & np.isfinite(v)


def default_engines():
    """numpy (refimpl), torch (autograd) and finite differences of refimpl's values."""
    from oracle.engines import torch_engine  # imported here: torch takes a second to import

    return [refimpl, torch_engine, FiniteDifferences(refimpl)]
