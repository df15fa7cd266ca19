"""Training on real data (oracle.testing.train): numpy and torch, step for step, on scikit-learn's digits."""

import argparse
import io
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")

import refimpl  # noqa: E402
from oracle.engines import torch_engine  # noqa: E402
from oracle.testing import train as train_mod  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
STEPS = 1000  # ≥ 500; ~22 epochs of 44 mini-batches of 32 (numpy ~0.3 s, torch ~1 s)


@pytest.fixture(scope="module")
def data():
    return train_mod.load_data(train_mod.SEED)


@pytest.fixture(scope="module")
def histories(data):
    W0, b0 = train_mod.init_params(train_mod.SIZES, train_mod.SEED)
    return {
        engine.name: train_mod.train(
            engine, W0, b0, data, steps=STEPS, batch=train_mod.BATCH, eta=train_mod.ETA, seed=train_mod.SEED
        )
        for engine in (refimpl, torch_engine)
    }


def _parse(*argv):
    return train_mod.add_arguments(argparse.ArgumentParser()).parse_args(list(argv))


def test_data_split_scaled_one_hot(data):
    assert repr(data) == "Data(1437 training / 360 test examples, 64 inputs, 10 classes)"
    assert data.x_train.shape == (1437, 64) and data.x_test.shape == (360, 64)
    assert np.allclose(data.x_train.mean(axis=0), 0.0)  # centred with the training mean
    assert np.ptp(np.concatenate([data.x_train, data.x_test]), axis=0).max() <= 1.0  # pixels / 16
    assert np.array_equal(data.y_train.argmax(axis=1), data.labels_train)
    assert np.all(data.y_train.sum(axis=1) == 1) and np.all(data.y_test.sum(axis=1) == 1)
    assert np.bincount(data.labels_test).min() >= 35  # stratified: every digit tested


def test_batch_sequence_is_seeded_and_covers_every_example():
    a = train_mod.batches(1437, 32, 100, seed=3)
    assert all(np.array_equal(u, v) for u, v in zip(a, train_mod.batches(1437, 32, 100, seed=3)))
    assert not np.array_equal(a[0], train_mod.batches(1437, 32, 100, seed=4)[0])
    epoch = np.concatenate(a[: 1437 // 32])
    assert len(a) == 100 and all(len(i) == 32 for i in a) and len(set(epoch)) == len(epoch)
    with pytest.raises(ValueError):
        train_mod.batches(10, 11, 1)


def test_initial_weights_are_not_modified(data):
    W0, b0 = train_mod.init_params(train_mod.SIZES, 0)
    copy = {l: w.copy() for l, w in W0.items()}
    train_mod.train(refimpl, W0, b0, data, steps=3)
    assert all(np.array_equal(W0[l], copy[l]) for l in W0) and all(not v.any() for v in b0.values())


def test_loss_histories_agree_step_for_step(histories):
    np_loss, torch_loss = histories["numpy"]["loss"], histories["torch"]["loss"]
    assert len(np_loss) == len(torch_loss) == STEPS >= 500
    assert np.all(np.isfinite(np_loss))
    np.testing.assert_allclose(torch_loss, np_loss, rtol=train_mod.RTOL, atol=0)
    assert train_mod.relative_difference(np_loss, torch_loss).max() <= train_mod.RTOL
    assert np_loss[-100:].mean() < 0.1 * np_loss[:10].mean()  # it did learn
    for key in ("W", "b"):
        for l in histories["numpy"][key]:
            np.testing.assert_allclose(histories["torch"][key][l], histories["numpy"][key][l], rtol=1e-9, atol=1e-12)


def test_test_accuracy_at_least_95_percent(histories, data):
    for engine in (refimpl, torch_engine):
        h = histories[engine.name]
        acc = train_mod.accuracy(engine, h["W"], h["b"], data.x_test, data.labels_test)
        assert acc >= 0.95, f"{engine.name}: test accuracy {acc:.4f}"
        assert acc == train_mod.accuracy(engine, h["W"], h["b"], data.x_test, data.y_test)  # one-hot too


def test_cli_run_writes_the_png_plot_and_exits_0(tmp_path, capsys):
    target = tmp_path / "loss.png"
    assert train_mod.run(_parse("--steps", "500", "--plot", str(target))) == 0  # 500 steps: 96.9 % measured
    assert target.read_bytes()[:8] == PNG_MAGIC
    out, err = capsys.readouterr()
    assert "numpy (refimpl)" in out and "torch (autograd oracle)" in out and "OK:" in out
    assert "largest relative difference of the loss histories" in out
    assert err == ""  # no progress bar when stderr is not a terminal


def test_svg_plot_names_both_engines(histories, tmp_path):
    target = train_mod.plot_losses(
        [histories["numpy"], histories["torch"]], tmp_path / "sub" / "loss.svg", title="digits"
    )
    text = target.read_text(encoding="utf-8")
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    assert "numpy (refimpl)" in text and "torch (autograd oracle)" in text


def test_cli_refuses_an_unknown_plot_format_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(train_mod, "train", lambda *a, **k: pytest.fail("trained"))
    assert train_mod.run(_parse("--plot", str(tmp_path / "loss.jpg"))) == 2
    assert ".svg or .png" in capsys.readouterr().err
    assert not (tmp_path / "loss.jpg").exists()


def test_cli_exits_1_when_accuracy_is_not_reached(capsys):
    assert train_mod.run(_parse("--steps", "5", "--eta", "0.01")) == 1
    assert "FAIL: test accuracy of numpy" in capsys.readouterr().out


def test_cli_exits_1_when_the_histories_differ(monkeypatch, capsys):
    real = train_mod.train

    def perturbed(engine, *args, **kwargs):
        h = real(engine, *args, **kwargs)
        if engine is torch_engine:
            h["loss"][2] *= 1 + 1e-8
        return h

    monkeypatch.setattr(train_mod, "train", perturbed)
    assert train_mod.run(_parse("--steps", "5")) == 1
    out = capsys.readouterr().out
    assert "FAIL: the loss histories differ by 1.00e-08 > 1e-09 (relative) at step 3" in out


@pytest.mark.parametrize(
    "module, argv, message",
    [
        ("sklearn.datasets", [], "scikit-learn"),
        ("matplotlib", ["--plot", "x.png"], "matplotlib"),
    ],
)
def test_cli_exits_2_without_an_optional_dependency(monkeypatch, capsys, tmp_path, module, argv, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, module, None)  # import fails
    assert train_mod.run(_parse(*argv)) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_cli_exits_2_for_a_batch_larger_than_the_data(capsys):
    assert train_mod.run(_parse("--batch", "5000")) == 2
    assert "1437 training examples" in capsys.readouterr().err


def test_arguments_are_checked():
    with pytest.raises(SystemExit):
        _parse("--steps", "0")
    with pytest.raises(SystemExit):
        _parse("--eta", "-1")
    args = _parse()
    assert (args.steps, args.batch, args.eta, args.seed, args.plot) == (
        train_mod.STEPS,
        train_mod.BATCH,
        train_mod.ETA,
        train_mod.SEED,
        None,
    )
    assert args.steps >= 500


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_only_on_a_terminal():
    tty, pipe = _Terminal(), io.StringIO()
    for stream in (tty, pipe):
        bar = train_mod._ProgressBar(stream)
        bar("numpy", 5, 10)
        bar("numpy", 10, 10)
        bar.clear()
    assert "5/10" in tty.getvalue() and "10/10" in tty.getvalue() and pipe.getvalue() == ""


def test_training_without_torch_loaded_leaves_threads_alone(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch")
    with train_mod._one_thread(object()):  # an engine without threads (torch not loaded)
        assert "torch" not in sys.modules  # not imported just to set its threads
    assert "torch" not in sys.modules


def test_running_mean():
    assert np.allclose(train_mod.running_mean([1, 2, 3, 4], 2), [1, 1.5, 2.5, 3.5])
