"""Training on real data: the handwritten digits, numpy (refimpl) and torch (autograd) side by side.

    load_data(seed)                        scikit-learn's digits, split, scaled and one-hot
    init_params(sizes, seed)               the seeded initial weights W0, b0 (the same for every engine)
    batches(n, batch, steps, seed)         the seeded mini-batch sequence (the same for every engine)
    train(engine, W0, b0, data, ...)       mini-batch SGD with the engine's train_step → history
    accuracy(engine, W, b, x, y)           share of examples classified correctly
    plot_losses(histories, path)           the loss curves of the engines on one figure (.png or .svg)
    add_arguments(parser), run(args)       the command ``train``

The data set is scikit-learn's bundled ``digits`` (1,797 images of 8×8 pixels with 17 grey
levels, ten classes; the file ships inside the scikit-learn package, nothing is downloaded).
It is split 80/20, stratified by class, with a seeded shuffle; the pixels are divided by 16
and centred with the mean of the training images (the test images are centred with the same
mean); the targets are one-hot vectors.

The network is 64-32-10: a tanh hidden layer and a softmax output layer, trained on the
cross-entropy (factor 1, batch mean) by mini-batch stochastic gradient descent in float64,
column convention. Both engines start from the same initial weights and see the same mini-
batches in the same order, so their loss histories must agree step for step up to floating-
point rounding: the run is an end-to-end check of forward, backward and update over hundreds of
steps, on top of the cases' hand-sized examples.

The loss recorded at step t (t = 1 … steps) is the cost of the t-th mini-batch at the
parameters before the t-th update, computed by the engine's own ``forward`` and ``loss``.

scikit-learn and matplotlib are imported inside the functions (optional extras): the rest of the
oracle works without them.
"""

from __future__ import annotations

import contextlib
import sys
import time

import numpy as np

from oracle.authoring.draw import ENGINE_LABELS, _check_path  # labels as in the history figure; .png or .svg

SIZES = (64, 32, 10)
ACTIVATIONS = {1: ("tanh", None), 2: ("softmax", None)}
LOSS = ("cross_entropy", 1.0, "mean")
CONVENTION = "column"

STEPS = 1000
BATCH = 32
ETA = 0.5
SEED = 0
TEST_SIZE = 0.2

RTOL = 1e-9  # loss histories of two float64 engines: relative agreement at every step
MIN_ACCURACY = 0.95  # test accuracy each engine must reach

MISSING_SKLEARN = "the train command needs scikit-learn (its bundled digits data): pip install 'backprop-oracle[data]'"
MISSING_MATPLOTLIB = "plotting needs matplotlib: pip install 'backprop-oracle[figures]'"


# ---------------------------------------------------------------- data and parameters


class Data:
    """The digits, split: x_* of shape (N, 64) (one image per row), y_* one-hot (N, 10), labels_* (N,)."""

    def __init__(self, x_train, labels_train, x_test, labels_test, classes=10):
        self.x_train, self.x_test = x_train, x_test
        self.labels_train, self.labels_test = labels_train, labels_test
        eye = np.eye(classes)
        self.y_train, self.y_test = eye[labels_train], eye[labels_test]

    def __repr__(self):
        return (
            f"Data({len(self.x_train)} training / {len(self.x_test)} test examples, "
            f"{self.x_train.shape[1]} inputs, {self.y_train.shape[1]} classes)"
        )


def load_data(seed=SEED, test_size=TEST_SIZE):
    """scikit-learn's digits: stratified seeded split, pixels / 16 centred with the training mean."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as exc:
        raise ImportError(MISSING_SKLEARN) from exc
    digits = load_digits()
    x = digits.data.astype(np.float64) / 16.0  # grey levels 0..16 → [0, 1]
    labels = digits.target.astype(np.int64)
    x_train, x_test, l_train, l_test = train_test_split(
        x, labels, test_size=test_size, stratify=labels, random_state=seed
    )
    mean = x_train.mean(axis=0)  # centred with the training mean only
    return Data(x_train - mean, l_train, x_test - mean, l_test, classes=int(labels.max()) + 1)


def init_params(sizes=SIZES, seed=SEED):
    """W^l ~ N(0, 1/n_{l−1}) (column convention: shape (n_l, n_{l−1})), b^l = 0; seeded."""
    rng = np.random.default_rng([seed, 1])
    W = {l: rng.normal(0.0, 1.0 / np.sqrt(sizes[l - 1]), size=(sizes[l], sizes[l - 1])) for l in range(1, len(sizes))}
    b = {l: np.zeros(sizes[l]) for l in range(1, len(sizes))}
    return W, b


def batches(n, batch, steps, seed=SEED):
    """The index arrays of ``steps`` mini-batches of ``batch`` examples out of n.

    Epoch after epoch, a seeded permutation of the n examples cut into n // batch batches (the
    remainder of each epoch is left out, so every batch has the same size). A pure function of
    its arguments: every engine trains on the same sequence.
    """
    if not 1 <= batch <= n:
        raise ValueError(f"batch must be between 1 and the {n} training examples, not {batch}")
    rng = np.random.default_rng([seed, 2])
    per_epoch = n // batch
    out = []
    while len(out) < steps:
        order = rng.permutation(n)
        out.extend(order[i * batch : (i + 1) * batch] for i in range(min(per_epoch, steps - len(out))))
    return out


# ---------------------------------------------------------------- training


@contextlib.contextmanager
def _one_thread(engine):
    """The engine's intra-op threads set to one while training (restored afterwards), if the engine
    has threads (``engine.threads(n)`` sets n and returns the previous count, as torch_engine does).

    The arrays are tiny (at most 64 × 32): a second thread gains nothing, and when the cores are
    busy with other work the threads' synchronisation costs milliseconds per operation (measured
    on 2 busy cores: 1,000 torch steps in 13 s with 2 threads, 0.9 s with 1). The values are the
    same either way.
    """
    threads = getattr(engine, "threads", None)
    if threads is None:
        yield
        return
    before = threads(1)
    try:
        yield
    finally:
        threads(before)


def batch_loss(engine, W, b, x, y, f=None, loss=LOSS):
    """The cost of the examples x (rows) with one-hot targets y, by the engine's forward and loss."""
    f = f or ACTIVATIONS
    _, a = engine.forward(W, b, f, x.T, convention=CONVENTION)
    name, factor, reduction = loss
    return float(engine.loss(name, a[max(W)], y.T, factor=factor, reduction=reduction, axis=0))


def train(engine, W0, b0, data, steps=STEPS, batch=BATCH, eta=ETA, seed=SEED, progress=None, f=None, loss=LOSS):
    """Mini-batch SGD on data.x_train with the engine's own train_step.

    Step t: the loss of mini-batch t at the current parameters (engine.forward + engine.loss),
    then W, b = engine.train_step(...) on that mini-batch. W0, b0 are not modified.
    progress: called as progress(t, steps) after every step (None: silent).
    Returns {"engine": name, "loss": array of the steps' losses, "W": final W, "b": final b,
    "seconds": wall-clock time}.
    """
    f = f or ACTIVATIONS
    W = {l: np.array(w, dtype=np.float64) for l, w in W0.items()}
    b = {l: None if v is None else np.array(v, dtype=np.float64) for l, v in b0.items()}
    losses = np.empty(steps)
    start = time.perf_counter()
    with _one_thread(engine):
        for t, idx in enumerate(batches(len(data.x_train), batch, steps, seed)):
            x, y = data.x_train[idx], data.y_train[idx]
            losses[t] = batch_loss(engine, W, b, x, y, f, loss)
            W, b = engine.train_step(W, b, f, x.T, y.T, loss, eta, convention=CONVENTION)
            if progress is not None:
                progress(t + 1, steps)
    return {
        "engine": getattr(engine, "name", str(engine)),
        "loss": losses,
        "W": W,
        "b": b,
        "seconds": time.perf_counter() - start,
    }


def accuracy(engine, W, b, x, y, f=None):
    """Share of the examples x (one per row) whose largest output is the class y (labels or one-hot)."""
    f = f or ACTIVATIONS
    y = np.asarray(y)
    labels = y.argmax(axis=1) if y.ndim == 2 else y
    with _one_thread(engine):
        _, a = engine.forward(W, b, f, np.asarray(x, dtype=np.float64).T, convention=CONVENTION)
    return float(np.mean(np.argmax(a[max(W)], axis=0) == labels))


def relative_difference(u, v):
    """|u − v| / max(|u|, |v|) elementwise (0 where both are 0)."""
    u, v = np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)
    scale = np.maximum(np.abs(u), np.abs(v))
    return np.divide(np.abs(u - v), scale, out=np.zeros_like(scale), where=scale > 0)


# ---------------------------------------------------------------- the figure


def running_mean(values, window):
    """Mean of the last ``window`` values at every step (fewer at the start)."""
    values = np.asarray(values, dtype=np.float64)
    c = np.concatenate([[0.0], np.cumsum(values)])
    t = np.arange(1, len(values) + 1)
    lo = np.maximum(t - window, 0)
    return (c[t] - c[lo]) / (t - lo)


def plot_losses(histories, path, title=None, window=None):
    """The loss per step of every history on one figure, with a legend naming the engines.

    histories: a list of train() results. Each engine's mini-batch losses are drawn thin, with
    their running mean over ``window`` steps (default: about one epoch) drawn bold in the same
    colour. Below, a second panel shows the relative difference of each history from the first
    one, step by step, on a log scale with the tolerance RTOL (steps where the two are identical
    are counted in the legend). Written as PNG or SVG by the suffix of ``path`` (SVG keeps its
    text as text, so the engine names can be searched in the file). Returns the path.
    """
    path = _check_path(path)
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(MISSING_MATPLOTLIB) from exc
    n = len(histories[0]["loss"])
    window = window or max(1, min(n, 40))
    colors = ["#1f4e96", "#e08a00", "#1b7a34", "#c0262d"]
    dashes = ["-", "--", ":", "-."]
    rc = {"svg.fonttype": "none", "svg.hashsalt": "backprop-oracle", "axes.unicode_minus": True}
    with matplotlib.rc_context(rc):
        fig = Figure(figsize=(8.5, 6.2), dpi=100)
        FigureCanvasAgg(fig)
        top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.2]})
        for i, h in enumerate(histories):
            steps = np.arange(1, len(h["loss"]) + 1)
            label = ENGINE_LABELS.get(h["engine"], h["engine"])
            color, ls = colors[i % len(colors)], dashes[i % len(dashes)]
            top.plot(
                steps,
                h["loss"],
                color=color,
                linestyle=ls,
                linewidth=0.8,
                alpha=0.55,
                label=f"{label}: loss of each mini-batch",
            )
            top.plot(
                steps,
                running_mean(h["loss"], window),
                color=color,
                linestyle=ls,
                linewidth=2.4 if i == 0 else 1.4,
                label=f"{label}: mean of the last {window} steps",
            )
        top.set_yscale("log")
        top.set_ylabel("cross-entropy of the mini-batch\n(before its update)")
        top.grid(True, which="both", alpha=0.25)
        top.legend(loc="upper right", fontsize=8)
        if title:
            top.set_title(title, fontsize=9.5)
        first = histories[0]
        first_label = ENGINE_LABELS.get(first["engine"], first["engine"])
        largest = 0.0
        for i, h in enumerate(histories[1:], 1):
            diff = relative_difference(first["loss"], h["loss"])
            steps = np.arange(1, len(diff) + 1)
            shown = diff > 0
            largest = max(largest, float(np.max(diff)) if len(diff) else 0.0)
            label = (
                f"{ENGINE_LABELS.get(h['engine'], h['engine'])} vs {first_label} "
                f"(identical at {int(np.sum(~shown))} of {len(diff)} steps: not drawn)"
            )
            bottom.semilogy(steps[shown], diff[shown], ".", markersize=2.5, color=colors[i % len(colors)], label=label)
        bottom.axhline(RTOL, color="#c0262d", linewidth=1, label=f"tolerance {RTOL:g}")
        top_limit = max(1e-4, largest * 1e3) if np.isfinite(largest) else 1e-4  # room for the legend
        bottom.set_ylim(1e-17, top_limit)
        bottom.set_ylabel("relative difference\nof the losses")
        bottom.set_xlabel("SGD step")
        bottom.grid(True, which="major", alpha=0.25)
        bottom.legend(loc="upper right", fontsize=7, ncol=2)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fmt = path.suffix.lower()[1:]
        fig.savefig(path, format=fmt, dpi=120, metadata={"Date": None} if fmt == "svg" else {}, facecolor="white")
    return path


# ---------------------------------------------------------------- the command


class _ProgressBar:
    """A one-line progress bar on standard error, drawn only when standard error is a terminal."""

    WIDTH = 30

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.active = self.stream.isatty()
        self._last = None

    def __call__(self, label, done, total):
        if not self.active:
            return
        filled = self.WIDTH * done // total
        text = f"{label:<6} [{'█' * filled}{'·' * (self.WIDTH - filled)}] {done}/{total}"
        if text != self._last:
            self._last = text
            print(f"\r\033[K{text}", end="", file=self.stream, flush=True)

    def clear(self):
        if self.active:
            print("\r\033[K", end="", file=self.stream, flush=True)


def _positive_int(text):
    value = int(text)
    if value < 1:
        import argparse

        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def _positive_float(text):
    value = float(text)
    if not value > 0:
        import argparse

        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def add_arguments(parser):
    """The options of ``train``."""
    parser.add_argument("--steps", type=_positive_int, default=STEPS, help=f"Mini-batch SGD steps (default {STEPS}).")
    parser.add_argument(
        "--batch", type=_positive_int, default=BATCH, help=f"Examples per mini-batch (default {BATCH})."
    )
    parser.add_argument("--eta", type=_positive_float, default=ETA, help=f"Learning rate η (default {ETA}).")
    parser.add_argument(
        "--seed",
        type=int,
        default=SEED,
        help=f"Seed of the split, the initial weights and the batch order (default {SEED}).",
    )
    parser.add_argument("--plot", metavar="FILE", help="Save the loss curves of both engines to FILE (.png or .svg).")
    return parser


def run(args):
    """Train numpy and torch from the same initial weights on the digits; print a summary.

    Exit status: 0 when the loss histories agree to RTOL (relative) at every step and both
    engines reach MIN_ACCURACY on the test set, 1 otherwise, 2 for unusable input (a plot file
    that is not .png/.svg, scikit-learn or matplotlib missing, a batch larger than the data).
    """
    from tabulate import tabulate

    import refimpl
    from oracle.engines import torch_engine

    if args.plot:
        try:
            _check_path(args.plot)
            import matplotlib  # noqa: F401  (fail before training, not after)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
        except ImportError:
            print(MISSING_MATPLOTLIB, file=sys.stderr)
            return 2
    try:
        data = load_data(args.seed)
    except ImportError as exc:
        print(exc, file=sys.stderr)
        return 2
    if not 1 <= args.batch <= len(data.x_train):
        print(f"--batch must be at most the {len(data.x_train)} training examples, not {args.batch}", file=sys.stderr)
        return 2

    W0, b0 = init_params(SIZES, args.seed)
    bar = _ProgressBar()
    histories = []
    for engine in (refimpl, torch_engine):
        histories.append(
            train(
                engine,
                W0,
                b0,
                data,
                steps=args.steps,
                batch=args.batch,
                eta=args.eta,
                seed=args.seed,
                progress=lambda t, n, e=engine.name: bar(e, t, n),
            )
        )
    bar.clear()

    accuracies = {
        h["engine"]: accuracy(engine, h["W"], h["b"], data.x_test, data.labels_test)
        for engine, h in zip((refimpl, torch_engine), histories)
    }
    train_acc = {
        h["engine"]: accuracy(engine, h["W"], h["b"], data.x_train, data.labels_train)
        for engine, h in zip((refimpl, torch_engine), histories)
    }
    diff = relative_difference(histories[0]["loss"], histories[1]["loss"])
    worst = int(np.argmax(diff))
    max_diff = float(diff[worst]) if np.all(np.isfinite(diff)) else float("inf")
    params_diff = max(
        float(np.max(np.abs(histories[0][k][l] - histories[1][k][l])) / max(np.max(np.abs(histories[0][k][l])), 1e-300))
        for k in ("W", "b")
        for l in histories[0][k]
    )

    print(
        f"digits (scikit-learn): {len(data.x_train)} training / {len(data.x_test)} test images of 8×8; "
        f"network {'-'.join(map(str, SIZES))}, tanh then softmax, cross-entropy (batch mean), float64"
    )
    print(
        f"SGD: {args.steps} steps, batch {args.batch}, η = {args.eta:g}, seed {args.seed}; "
        f"the same initial weights and batches for both engines\n"
    )
    rows = [
        [
            ENGINE_LABELS[h["engine"]],
            f"{h['loss'][0]:.6f}",
            f"{h['loss'][-1]:.6f}",
            f"{100 * train_acc[h['engine']]:.2f} %",
            f"{100 * accuracies[h['engine']]:.2f} %",
            f"{h['seconds']:.1f} s",
        ]
        for h in histories
    ]
    print(
        tabulate(
            rows,
            headers=["engine", "first loss", "final loss (last batch)", "train accuracy", "test accuracy", "time"],
            disable_numparse=True,
        )
    )
    print(f"\nlargest relative difference of the loss histories: {max_diff:.2e} (step {worst + 1}); tolerance {RTOL:g}")
    print(f"largest difference of the final parameters, relative to the largest entry of each: {params_diff:.2e}")

    problems = []
    if not max_diff <= RTOL:
        problems.append(f"the loss histories differ by {max_diff:.2e} > {RTOL:g} (relative) at step {worst + 1}")
    for h in histories:
        acc = accuracies[h["engine"]]
        if not acc >= MIN_ACCURACY:
            problems.append(f"test accuracy of {h['engine']} is {100 * acc:.2f} % < {100 * MIN_ACCURACY:g} %")
    if args.plot:
        title = (
            f"scikit-learn digits, {'-'.join(map(str, SIZES))} tanh/softmax, SGD: {args.steps} steps, "
            f"batch {args.batch}, η = {args.eta:g}, seed {args.seed}\ntest accuracy: "
            + ", ".join(f"{h['engine']} {100 * accuracies[h['engine']]:.2f} %" for h in histories)
        )
        print(f"plot: {plot_losses(histories, args.plot, title)}")
    for problem in problems:
        print(f"FAIL: {problem}")
    if not problems:
        print(
            f"OK: the histories agree to {RTOL:g} at every step and both engines reach "
            f"≥ {100 * MIN_ACCURACY:g} % test accuracy"
        )
    return 1 if problems else 0
