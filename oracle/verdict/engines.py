"""The engines the harness compares, all behind refimpl's interface.

An engine is any object or module with the functions listed in refimpl's
docstring (a function it lacks, or that raises NotImplementedError, is a
quantity it does not provide), a ``name`` and an optional ``tolerance``
(rtol, atol): how closely it is expected to agree with an exact computation.
Two engines agree on a value when they are within the larger of their
tolerances.
"""
from __future__ import annotations

import refimpl
from oracle.engines.finite_diff import FD_ATOL, FD_RTOL, FiniteDifferences

ENGINE_RTOL = 1e-10      # float64 engines: relative agreement ...
ENGINE_ATOL = 1e-12      # ... with an absolute floor for values at or near zero
FLOAT32_TOL = (1e-4, 1e-6)   # precision: float32 — ε₃₂ = 1.2e-7, grown by sums over widths and layers

TOLERANCE = {"numpy": (ENGINE_RTOL, ENGINE_ATOL), "torch": (ENGINE_RTOL, ENGINE_ATOL),
             "fd": (FD_RTOL, FD_ATOL)}


def tolerance(engine):
    """(rtol, atol) of an engine: its own attribute, else the table above, else float64's."""
    return getattr(engine, "tolerance", None) or TOLERANCE.get(engine.name, (ENGINE_RTOL, ENGINE_ATOL))


def default_engines():
    """numpy (refimpl), torch (autograd) and finite differences of refimpl's values."""
    from oracle.engines import torch_engine  # imported here: torch takes a second to import
    return [refimpl, torch_engine, FiniteDifferences(refimpl)]
