"""Each rule has one source: names, defaults and tolerances are refimpl's or the engines' own, and
the verdict core never lets a reference engine drop a quantity silently (issue 10)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import refimpl
from oracle.engines import finite_diff, torch_engine
from oracle.testing import fuzz
from oracle.verdict import cases, engines, expr
from oracle.verdict.cases import load_case
from oracle.verdict.compare import MISMATCH, check_case

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "oracle" / "authoring" / "case.schema.json").read_text(encoding="utf-8"))


def test_activation_and_loss_names_are_refimpls_everywhere():
    defs = SCHEMA["$defs"]
    assert tuple(defs["activation_name"]["enum"]) == refimpl.ACTIVATIONS
    assert tuple(defs["loss"]["properties"]["name"]["enum"]) == refimpl.LOSSES
    assert cases.ACTIVATIONS == refimpl.ACTIVATIONS and cases.LOSSES == refimpl.LOSSES
    assert torch_engine.ACTIVATIONS == refimpl.ACTIVATIONS and torch_engine.LOSSES == refimpl.LOSSES
    assert set(fuzz.HIDDEN + fuzz.OUTPUT_ONLY) == set(refimpl.ACTIVATIONS)
    assert set(fuzz.LOSSES) == set(refimpl.LOSSES)


def test_unknown_names_raise_in_both_engines():
    for engine in (refimpl, torch_engine):
        with pytest.raises(ValueError, match="unknown activation"):
            engine.activation("swosh", np.zeros(2))
        with pytest.raises(ValueError, match="unknown loss"):
            engine.loss("hinge", np.zeros(2), np.zeros(2))


def test_default_parameters_are_refimpls_everywhere():
    assert refimpl.DEFAULT_PARAM == {"leaky_relu": 0.01, "prelu": 0.25, "swish": 1.0}
    assert torch_engine.DEFAULT_PARAM == refimpl.DEFAULT_PARAM
    z = np.array([-2.0, -0.5, 0.0, 1.5])
    for name, param in refimpl.DEFAULT_PARAM.items():
        default = refimpl.activation(name, z)
        assert np.allclose(refimpl.activation(name, z, param), default, rtol=0, atol=0)
        assert np.allclose(torch_engine.activation(name, z), default, rtol=1e-15, atol=0)
        assert np.allclose(expr._CALL[name](z), default, rtol=1e-15, atol=0)


def test_expressions_take_the_cases_own_alpha():
    z = np.array([-2.0, 3.0])
    for name in ("leaky_relu", "prelu", "swish"):
        assert np.allclose(expr._CALL[name](z, 0.3), refimpl.activation(name, z, 0.3), rtol=1e-15, atol=0)


def test_engines_carry_their_own_tolerance():
    assert not hasattr(engines, "TOLERANCE")  # no table keyed by engine name
    fd = finite_diff.FiniteDifferences(refimpl)
    assert engines.tolerance(refimpl) == refimpl.tolerance == (engines.ENGINE_RTOL, engines.ENGINE_ATOL)
    assert engines.tolerance(torch_engine) == torch_engine.tolerance == refimpl.tolerance
    assert engines.tolerance(fd) == (finite_diff.FD_RTOL, finite_diff.FD_ATOL)
    renamed = type("Renamed", (), {"name": "torch", "tolerance": (1e-3, 1e-3)})()
    assert engines.tolerance(renamed) == (1e-3, 1e-3)  # the attribute decides, never the name


def test_compare_and_fuzz_share_one_agreement_rule():
    tol = refimpl.tolerance
    assert engines.agree(1.0, 1.0 + 0.5e-10, tol, tol) and not engines.agree(1.0, 1.0 + 2e-10, tol, tol)
    assert not engines.agree(np.inf, np.inf, tol, tol) and not engines.agree(np.nan, 0.0, tol, tol)
    cmp = fuzz._Comparison([], ("a", "b"), (tol, tol))
    u = np.array([1.0, 0.0, 1.0])
    v = np.array([1.0 + 0.5e-10, 5e-13, 1.0 + 2e-10])
    assert cmp._bad(u, v).tolist() == (~engines.agree(u, v, tol, tol)).tolist() == [False, False, True]


def test_fuzz_uses_the_finite_difference_engines_cost_and_kink_rule():
    assert not hasattr(fuzz, "_FD")
    spec = fuzz.random_spec(np.random.default_rng([3, 1]), max_width=4, max_batch=3)
    fd = finite_diff.FiniteDifferences(refimpl)
    expected = fd.cost(spec.W, spec.b, spec.f, spec.x, spec.y, spec.loss, spec.convention, spec.loss[2])
    assert fuzz._Cost(spec)(spec.W, spec.b) == float(expected)
    assert finite_diff.directional(abs, 1e-6)[0] is None  # |t| at 0: a kink
    assert finite_diff.directional(lambda t: t * t + t, 1e-6)[0] == pytest.approx(1.0)


class DropsDelta:
    """refimpl, except that backward stops returning δ (a mutant that must not survive)."""

    name = "numpy"
    tolerance = refimpl.tolerance

    def __getattr__(self, attr):
        return getattr(refimpl, attr)

    def backward(self, *args, **kwargs):
        out = refimpl.backward(*args, **kwargs)
        del out["delta"]
        return out


def test_a_reference_engine_that_drops_delta_is_a_mismatch():
    case = load_case(ROOT / "cases" / "000_sigmoid_net_row.yaml")
    checks = check_case(case, [DropsDelta(), torch_engine, finite_diff.FiniteDifferences(refimpl)])
    delta = [c for c in checks if c.quantity.startswith("delta[")]
    assert delta and all(c.status == MISMATCH for c in delta)
    assert any("backward gives no delta" in e.message for c in delta for e in c.elements)
    others = [c for c in checks if not c.quantity.startswith("delta[")]
    assert all(c.status != MISMATCH for c in others)


def test_an_engine_that_declares_a_quantity_not_provided_is_not_a_mismatch():
    class NoDelta(DropsDelta):
        not_provided = ("delta",)

    class UnderTest(DropsDelta):  # an implementation under test: not a reference engine
        complete = False

    case = load_case(ROOT / "cases" / "000_sigmoid_net_row.yaml")
    for engine in (NoDelta(), UnderTest()):
        checks = check_case(case, [engine, torch_engine])
        assert all(c.status != MISMATCH for c in checks)
