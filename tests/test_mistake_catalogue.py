"""The catalogue of named mistakes (oracle.student.mistakes) against the bundled cases, in-process.

Every catalogued mistake, run as an implementation (its faulty_interface), must fail at least one
bundled case, and be named at the first divergence of at least one of them; a mistake that shows
as an error message instead of a value (``symptom``) must match the grader's message. The engines'
results and the variants' results are computed once per case and shared by all tests
(grade.References).
"""

from __future__ import annotations

import importlib.util
import re
import types
from pathlib import Path

import numpy as np
import pytest

import refimpl
from oracle.verdict.cases import discover, load_case
from oracle.verdict.engines import default_engines
from oracle.student import grade
from oracle.student.mistakes import CATALOGUE, MISTAKES, faulty_interface

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "cases"
GRADING = CASES / "grading"
CORRECT = Path(__file__).parent / "fixtures" / "impls" / "correct_solution.py"
TOLERANCE = (1e-6, 1e-9)

NEW = [
    "BP4 with a^l instead of a^{l−1}",
    "tanh' taken as 1 − tanh",
    "σ' taken as σ(1 + σ)",
    "softmax + cross-entropy δ^L = y − a",
    "softmax without the max shift",
    "backward loop skips layer 1",
    "δ averaged over the batch before the outer product",
    "bias gradient a mean where the loss is a sum",
    "leaky ReLU's α on the positive side",
    "BP2 with f' of layer l+1",
    "update mutating W in place",
    "mean squared error's gradient without 1/K",
    "sigmoid + BCE without clamping",
]

# Mistakes no bundled case can show yet, and why. Each is an xfail(strict): once a case shows it,
# the test passes unexpectedly and fails, so that the entry is removed.
NOT_SHOWN = {}  # cases/grading/sigmoid_bce_saturated.yaml shows the last one (fd declines there)
SYMPTOM_MESSAGE = "update modified its inputs in place (W[1], W[2]); inputs must not be changed"


def engine(name):
    """A catalogued mistake as an implementation under test."""
    return types.SimpleNamespace(name="student", tolerance=TOLERANCE, **faulty_interface(name))


@pytest.fixture(scope="module")
def refs():
    return grade.References(default_engines())


@pytest.fixture(scope="module")
def cases():
    return [load_case(p) for p in discover([CASES])]


@pytest.fixture(scope="module")
def grades(refs, cases):
    """{mistake: [CaseGrade per bundled case]}, each computed once."""
    cache = {}

    def of(name):
        if name not in cache:
            student = engine(name)
            cache[name] = [grade.grade_case(case, student, refs) for case in cases]
        return cache[name]

    return of


def failing(case_grades):
    return [g for g in case_grades if any(v.status not in (grade.PASS, grade.NOT_IMPLEMENTED) for v in g.verdicts)]


def named_at_first(name, case_grades):
    return [
        f"{g.case.path.name}:{g.first.quantity}"
        for g in case_grades
        if g.first is not None and name in [m.name for m in g.first.mistakes]
    ]


def test_catalogue_has_at_least_28_mistakes_with_unique_names():
    names = [m.name for m in MISTAKES]
    assert len(CATALOGUE) >= 28
    assert len(set(names)) == len(names) == len(CATALOGUE)
    assert all(CATALOGUE[m.name] is m for m in MISTAKES)
    assert len({m.variant for m in MISTAKES}) == len(MISTAKES)  # each mistake its own variant
    assert set(NEW) <= set(CATALOGUE)
    assert all(m.equation and m.description for m in MISTAKES)


def _shown(name):
    if name in NOT_SHOWN:
        return pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=NOT_SHOWN[name]))
    return name


VALUE_MISTAKES = [_shown(m.name) for m in MISTAKES if m.symptom is None]


@pytest.mark.parametrize("name", VALUE_MISTAKES)
def test_every_mistake_fails_a_bundled_case_and_is_named_there(name, grades):
    case_grades = grades(name)
    assert failing(case_grades), f"{name!r} passes every bundled case"
    seen = [(g.case.path.name, g.first and g.first.quantity, g.first and g.first.mistake) for g in failing(case_grades)]
    assert named_at_first(name, case_grades), f"{name!r} is never named at a first divergence: {seen}"


@pytest.mark.parametrize("name", [m.name for m in MISTAKES if m.symptom is not None])
def test_a_symptom_mistake_matches_the_graders_message(name, grades):
    mistake = CATALOGUE[name]
    assert re.search(mistake.symptom, SYMPTOM_MESSAGE)
    assert re.search(mistake.symptom, "train_step modified its input in place (b[2])")
    assert not re.search(mistake.symptom, "update raised ValueError: operands could not be broadcast")
    # in-process the harness passes copies: the values are the reference's, no case fails
    assert not failing(grades(name))


def test_update_in_place_changes_its_inputs_and_gives_the_right_values():
    W = {1: np.array([[0.5, -0.2], [0.1, 0.3]]), 2: np.array([[1.0, -1.0]])}
    b = {1: np.array([0.1, 0.0]), 2: None}
    dW = {1: np.array([[0.2, 0.4], [-0.1, 0.0]]), 2: np.array([[0.5, 0.5]])}
    db = {1: np.array([1.0, -1.0]), 2: None}
    expected = refimpl.update(W, b, dW, db, 0.1)
    before = {l: w.copy() for l, w in W.items()}
    got = faulty_interface("update mutating W in place")["update"](W, b, dW, db, 0.1)
    for l in W:
        np.testing.assert_array_equal(got[0][l], expected[0][l])
        np.testing.assert_array_equal(W[l], expected[0][l])  # the caller's array was changed
        assert not np.array_equal(W[l], before[l])
    np.testing.assert_array_equal(b[1], expected[1][1])


def test_new_grading_cases_each_show_their_mistakes(grades, cases):
    """The cases of cases/grading are there for these mistakes: each is named there."""
    wanted = {
        "three_activations_square_layers.yaml": [
            ("BP4 with a^l instead of a^{l−1}", "dC/dW[3]"),
            ("tanh' taken as 1 − tanh", "f'(z[2])"),
            ("σ' taken as σ(1 + σ)", "f'(z[3])"),
            ("leaky ReLU's α on the positive side", "f'(z[1])"),
            ("BP2 with f' of layer l+1", "delta[2]"),
            ("backward loop skips layer 1", "dC/da[1]"),
        ],
        "softmax_cross_entropy_large_logits.yaml": [
            ("softmax + cross-entropy δ^L = y − a", "delta[2]"),
            ("softmax without the max shift", "a[2]"),
        ],
        "softmax_sum_overflows.yaml": [("softmax without the max shift", "a")],
        "sigmoid_bce_saturated.yaml": [("sigmoid + BCE without clamping", "dC/da[2]")],
        "sum_reduction_mse_batch.yaml": [
            ("bias gradient a mean where the loss is a sum", "dC/db[2]"),
            ("δ averaged over the batch before the outer product", "dC/dW[2]"),
            ("mean squared error's gradient without 1/K", "dC/da[2]"),
            ("BP2 with f' of layer l+1", "delta[1]"),
        ],
    }
    index = {c.path.name: i for i, c in enumerate(cases) if c.path.parent == GRADING}
    assert set(wanted) == set(index)
    for file, expected in wanted.items():
        for name, quantity in expected:
            g = grades(name)[index[file]]
            assert g.first is not None and g.first.quantity == quantity, (file, name, g.first and g.first.quantity)
            assert name in [m.name for m in g.first.mistakes], (file, name, g.first.mistake)


def test_refimpl_and_the_correct_solution_pass_the_grading_cases_undiagnosed(refs, cases):
    spec = importlib.util.spec_from_file_location("correct_solution_for_catalogue", CORRECT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for impl in (refimpl, module):
        student = types.SimpleNamespace(
            name="student", tolerance=TOLERANCE, **{k: getattr(impl, k) for k in refimpl.__all__}
        )
        for case in (c for c in cases if c.path.parent == GRADING):
            g = grade.grade_case(case, student, refs)
            assert g.passed and g.first is None, (impl.__name__, case.path.name, grade.explain_first(g))


SATURATED = """\
# yaml-language-server: $schema=../../oracle/authoring/case.schema.json
title: Sigmoid + binary cross-entropy with saturated outputs, z² = [40.1, −40.0]
source:
  document: 001_0841ec7b56f57289.txt
  heading: Cost Functions
  instance: >
    Our own instance: σ(40.1) rounds to 1 and σ(−40) is 4.2e-18, both on the side of their
    target, so the cost stays finite and tiny; δ² = a² − y is finite, while (a − y)/(a(1 − a))
    is 0/0 = NaN at the first output.
kind: network
layers:
  - W: [[0.5, -0.5], [1.0, 0.5]]
    b: [0.0, 0.0]
    activation: tanh
  - W: [[40.0, 20.0], [-30.0, -20.0]]
    b: [40.1, -40.0]
    activation: sigmoid
loss: {name: binary_cross_entropy, factor: 1, reduction: mean}
x: [0.0, 0.0]
y: [1, 0]
gradient_descent: {eta: 0.1}
"""


def test_bce_without_clamping_on_a_saturated_network(tmp_path):
    """The mistake shows where σ(z) rounds to 1: graded against numpy and torch (finite differences
    cannot difference a cost at a = 1, see NOT_SHOWN)."""
    path = tmp_path / "bce_saturated.yaml"
    path.write_text(SATURATED, encoding="utf-8")
    case = load_case(path)
    engines = default_engines()[:2]  # numpy, torch
    refs = grade.References(engines)
    reference = refs.results(case)["numpy"]
    assert np.all(np.isfinite(reference["delta[2]"])) and np.all(np.isfinite(reference["dC/da[2]"]))
    name = "sigmoid + BCE without clamping"
    g = grade.grade_case(case, engine(name), refs)
    assert g.first is not None and g.first.quantity == "dC/da[2]"
    assert name in [m.name for m in g.first.mistakes]
    assert not np.all(np.isfinite(refs.mistakes(case)[name]["delta[2]"]))
    correct = types.SimpleNamespace(
        name="student", tolerance=TOLERANCE, **{k: getattr(refimpl, k) for k in refimpl.__all__}
    )
    assert grade.grade_case(case, correct, refs).passed


def test_variants_compute_the_math_they_state():
    i = faulty_interface
    z = np.array([[-1.0, 0.5], [2.0, -0.3]])
    np.testing.assert_allclose(i("tanh' taken as 1 − tanh")["activation_derivative"]("tanh", z), 1 - np.tanh(z))
    s = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(i("σ' taken as σ(1 + σ)")["activation_derivative"]("sigmoid", z), s * (1 + s))
    np.testing.assert_array_equal(
        i("leaky ReLU's α on the positive side")["activation_derivative"]("leaky_relu", z, 0.2),
        [[1.0, 0.2], [0.2, 1.0]],
    )
    np.testing.assert_array_equal(
        i("leaky ReLU's α on the positive side")["activation_derivative"]("relu", z),
        refimpl.activation_derivative("relu", z),
    )
    a, y = np.array([[0.2, 0.9], [0.4, 0.1], [0.7, 0.5]]), np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])
    np.testing.assert_allclose(
        i("mean squared error's gradient without 1/K")["loss_gradient"]("mse", a, y, 1.5),
        3 * refimpl.loss_gradient("mse", a, y, 1.5),
    )
    # the feature axis of a row-convention loss is honoured (axis=-1: K = 2, not N = 3)
    np.testing.assert_allclose(
        i("mean squared error's gradient without 1/K")["loss_gradient"]("mse", a, y, 1.5, -1),
        2 * refimpl.loss_gradient("mse", a, y, 1.5, -1),
    )
    for name in CATALOGUE:  # ∇_a C of the other losses: only the flipped sign changes it
        for loss in ("mae", "binary_cross_entropy"):
            sign = -1 if name == "sign of ∇_a C flipped" else 1
            np.testing.assert_allclose(
                i(name)["loss_gradient"](loss, a, y, 1.0, -1),
                sign * refimpl.loss_gradient(loss, a, y, 1.0, -1),
                err_msg=name,
            )
    big = np.array([1000.0, 999.0])
    assert np.isnan(i("softmax without the max shift")["activation"]("softmax", big)).all()
    np.testing.assert_allclose(
        i("softmax without the max shift")["activation"]("softmax", big - 999.0), refimpl.activation("softmax", big)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        g = i("sigmoid + BCE without clamping")["loss_gradient"](
            "binary_cross_entropy", np.array([1.0, 1e-14]), np.array([1.0, 0.0])
        )
    assert np.isnan(g[0]) and g[1] == pytest.approx(1.0)  # the clamped gradient is 0 and 0.01


def _net(widths, batch, reduction="sum", acts=None):
    rng = np.random.default_rng(len(widths) * 10 + batch)
    L = len(widths) - 1
    W = {l: rng.normal(size=(widths[l], widths[l - 1])) for l in range(1, L + 1)}
    b = {l: rng.normal(size=widths[l]) for l in range(1, L + 1)}
    f = {l: ((acts or {}).get(l, "sigmoid"), None) for l in range(1, L + 1)}
    x, y = rng.normal(size=(widths[0], batch)), rng.random(size=(widths[-1], batch))
    return W, b, f, x, y, ("squared_error", 0.5, reduction)


def test_batch_and_layer_variants():
    W, b, f, x, y, loss = _net([2, 3, 2], batch=4, acts={2: "identity"})
    ref = refimpl.backward(W, b, f, x, y, loss)
    z, a = refimpl.forward(W, b, f, x)
    # BP4 with a^l: δ^l (a^l)ᵀ of shape (n_l, n_l), also where n_l ≠ n_{l−1}
    got = faulty_interface("BP4 with a^l instead of a^{l−1}")["backward"](W, b, f, x, y, loss)
    for l in W:
        np.testing.assert_allclose(got["dC/dW"][l], ref["delta"][l] @ a[l].T)
    # the loop that skips layer 1: zeros there, the layers above untouched
    got = faulty_interface("backward loop skips layer 1")["backward"](W, b, f, x, y, loss)
    for key in ("dC/da", "delta", "dC/dW", "dC/db"):
        assert not np.any(got[key][1]) and np.shape(got[key][1]) == np.shape(ref[key][1])
        np.testing.assert_allclose(got[key][2], ref[key][2])
    one = _net([3, 2], batch=2)
    np.testing.assert_allclose(
        faulty_interface("backward loop skips layer 1")["backward"](*one)["dC/dW"][1],
        refimpl.backward(*one)["dC/dW"][1],
    )  # L = 1: nothing skipped
    # δ and a averaged over the batch: N·mean(δ) mean(a)ᵀ; the bias gradient as a mean (sum reduction)
    got = faulty_interface("δ averaged over the batch before the outer product")["backward"](W, b, f, x, y, loss)
    for l in W:
        np.testing.assert_allclose(got["dC/dW"][l], 4 * np.outer(ref["delta"][l].mean(1), a[l - 1].mean(1)))
    got = faulty_interface("bias gradient a mean where the loss is a sum")["backward"](W, b, f, x, y, loss)
    for l in W:
        np.testing.assert_allclose(got["dC/db"][l], ref["dC/db"][l] / 4)
    mean = (*_net([2, 3, 2], batch=4)[:5], ("squared_error", 0.5, "mean"))
    np.testing.assert_allclose(
        faulty_interface("bias gradient a mean where the loss is a sum")["backward"](*mean)["dC/db"][1],
        refimpl.backward(*mean)["dC/db"][1],
    )  # right for the mean
    # BP2 with the next layer's derivative: δ¹ = dC/da¹ ⊙ f_2'(z¹) = dC/da¹ (f_2 is the identity)
    got = faulty_interface("BP2 with f' of layer l+1")["backward"](W, b, f, x, y, loss)
    np.testing.assert_allclose(got["delta"][1], ref["dC/da"][1])
    np.testing.assert_allclose(got["delta"][2], ref["delta"][2])
