"""In-process unit tests of the pieces the isolated worker runs: protocol, adapters, template, loading."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import refimpl
from oracle.student import sandbox, template
from oracle.student.runtime import adapters, protocol, worker

IMPLS = Path(__file__).parent / "fixtures" / "impls"
W = {1: np.array([[0.4, -0.2], [0.3, 0.1]]), 2: np.array([[0.1, 0.5]])}
B = {1: np.array([0.1, -0.1]), 2: np.array([0.0])}
F = {1: ("sigmoid", None), 2: ("sigmoid", None)}
X = np.array([[0.1, 0.3, -0.2], [0.3, -0.1, 0.5]])
Y = np.array([[1.0, 0.0, 1.0]])
LOSS = ("squared_error", 0.5, "mean")


def test_protocol_round_trip_keeps_arrays_dicts_tuples_and_nan():
    message = {
        "W": W,
        "f": F,
        "loss": LOSS,
        "x": np.array([np.nan, np.inf, -1.0]),
        "n": 3,
        "none": None,
        "flags": [True, "text"],
    }
    back = protocol.decode(protocol.loads(protocol.dumps(protocol.encode(message))))
    assert back["f"] == F and back["loss"] == LOSS and back["n"] == 3 and back["none"] is None
    np.testing.assert_array_equal(back["W"][1], W[1])
    assert np.isnan(back["x"][0]) and back["x"][1] == np.inf


@pytest.mark.parametrize("bad", [np.array(["a"]), object(), np.array([1 + 2j])])
def test_protocol_refuses_what_is_not_numbers(bad):
    with pytest.raises(TypeError):
        protocol.encode(bad)


@pytest.mark.parametrize(
    "garbage",
    [{"__nd__": [2], "v": [1.0]}, {"__nd__": "x", "v": []}, {"__dict__": [[{"k": 1}, 2]]}, {"__nd__": [1], "v": ["a"]}],
)
def test_protocol_rejects_malformed_answers(garbage):
    with pytest.raises(protocol.ProtocolError):
        protocol.decode(garbage)
    with pytest.raises(protocol.ProtocolError):
        protocol.loads("{not json")


def test_template_functions_all_raise_not_implemented():
    calls = [
        ("activation", ("relu", 1.0)),
        ("activation_derivative", ("relu", 1.0)),
        ("loss", ("mse", 1.0, 1.0)),
        ("loss_gradient", ("mse", 1.0, 1.0)),
        ("forward", (W, B, F, X)),
        ("backward", (W, B, F, X, Y, LOSS)),
        ("update", (W, B, W, B, 0.1)),
        ("train_step", (W, B, F, X, Y, LOSS, 0.1)),
        ("graph", ([], {})),
        ("jacobian", (W[1], B[1], X[:, 0])),
    ]
    for name, args in calls:
        with pytest.raises(NotImplementedError):
            getattr(template, name)(*args)


def namespace(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return vars(module)


@pytest.mark.parametrize("fixture", ["backprop_style.py", "layer_style.py"])
def test_adapters_give_refimpls_gradients(fixture):
    functions = adapters.adapt(namespace(IMPLS / fixture))
    got = functions["backward"](W, B, F, X, Y, LOSS)
    expected = refimpl.backward(W, B, F, X, Y, LOSS)
    for l in (1, 2):
        np.testing.assert_allclose(got["dC/dW"][l], expected["dC/dW"][l], rtol=1e-12)
        np.testing.assert_allclose(got["dC/db"][l], expected["dC/db"][l], rtol=1e-12)
    if "dC/da" in got:
        for l in (1, 2):
            np.testing.assert_allclose(got["dC/da"][l], expected["dC/da"][l], rtol=1e-12)


@pytest.mark.parametrize("fixture", ["backprop_style.py", "layer_style.py"])
def test_adapters_answer_row_convention_cases_by_transposing(fixture):
    backward = adapters.adapt(namespace(IMPLS / fixture))["backward"]
    Wr = {l: w.T for l, w in W.items()}
    got = backward(Wr, B, F, X.T, Y.T, LOSS, "row")
    expected = refimpl.backward(Wr, B, F, X.T, Y.T, LOSS, "row")
    for key in ("dC/dW", "dC/db", "dC/da"):
        for l in (1, 2):
            if key in got:
                np.testing.assert_allclose(got[key][l], expected[key][l], rtol=1e-12)


def test_per_layer_lists_must_have_one_entry_per_layer():
    assert adapters._by_layer([1, 2], 2) == {1: 1, 2: 2}
    with pytest.raises(ValueError, match="expected 3 per-layer values"):
        adapters._by_layer([1, 2], 3)


def test_worker_loads_files_packages_and_modules(tmp_path):
    assert callable(worker.load(str(IMPLS / "correct_solution.py")).activation)
    pkg = tmp_path / "student_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("VALUE = 7\n", encoding="utf-8")
    assert worker.load(str(pkg)).VALUE == 7
    assert worker.load("refimpl.losses").LOSSES


def test_the_grader_names_the_inputs_an_implementation_changed():
    sent = [{1: np.ones(2)}, {1: None}, F, np.zeros(1)]
    back = [{1: np.array([5.0, 1.0])}, {1: None}, F, np.ones(1)]
    assert sandbox.changed_inputs(sent, back, "forward") == ["W[1]", "x"]
    assert sandbox.changed_inputs(sent, None, "forward") == ["W", "b", "f", "x"]  # nothing came back
    assert sandbox._diff({1: np.ones(2)}, {1: np.ones(2), 2: None}, "b") == ["b"]
    assert sandbox._diff(np.ones(2), np.ones(3), "x") == ["x"]
    assert sandbox._diff(np.array([np.nan]), np.array([np.nan]), "x") == []


def test_the_import_guard_refuses_forbidden_packages_and_remembers_them():
    import sys

    from oracle.student.runtime.imports import ImportGuard, forbidden, refusal

    assert forbidden() == {"refimpl", "oracle", "torch", "jax", "tensorflow", "autograd"}
    assert forbidden(["torch", "refimpl"]) == {"refimpl", "oracle", "jax", "tensorflow", "autograd"}
    guard = ImportGuard({"autograd"})  # asked directly: not installed in this process's meta path
    with pytest.raises(ImportError, match="uses an automatic-differentiation package: not allowed"):
        guard.find_spec("autograd.numpy")
    assert guard.find_spec("json") is None
    assert guard.attempts == ["autograd"]
    assert guard not in sys.meta_path
    assert refusal("refimpl") == "import of 'refimpl' is not allowed: uses the reference implementation: not allowed"


def test_the_workers_interface_list_is_refimpls():
    """The worker cannot import refimpl, so it keeps the list of names; it must be refimpl's."""
    assert adapters.INTERFACE == tuple(refimpl.__all__)
