#!/usr/bin/env python
"""refimpl.train_step before and after the benchmark's changes to refimpl, in one process.

    python benchmarks/before_after.py [--threads 1] [--rounds 7]

"Before" is the code as it was (copied below): the sigmoid with np.where over both branches,
σ'(z) as σ(z)·σ(−z) from two full sigmoids, and the update p − η ∂C/∂p with two temporaries.
It is patched in and out of refimpl, and both versions are timed in interleaved blocks on
the configurations of bench.py's step section, each checked to give the same parameters.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench  # noqa: E402

import refimpl  # noqa: E402
from refimpl import activations, network  # noqa: E402


def old_sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def old_derivative(self, z, axis=0):
    z = activations.as_float(z)
    return activations._sigmoid(z) * activations._sigmoid(-z)


def old_step(self, p, grad, eta):
    return p - eta * grad


NEW = (activations._sigmoid, activations.Sigmoid.derivative, network.Backpropagation.step)
OLD = (old_sigmoid, old_derivative, old_step)


def use(version):
    activations._sigmoid, activations.Sigmoid.derivative, network.Backpropagation.step = version


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--seed", type=int, default=0)
    opts = p.parse_args()
    from tabulate import tabulate
    from threadpoolctl import threadpool_limits

    limits = threadpool_limits(opts.threads, user_api="blas")  # noqa: F841 (kept for the run)
    rows = []
    for sizes in bench.NETS:
        for dtype in bench.DTYPES:
            for N in bench.BATCHES:
                W, b, f, x, y, _ = bench.make_inputs(sizes, N, dtype, opts.seed)

                def step():
                    return refimpl.train_step(W, b, f, x, y, bench.LOSS, bench.ETA)

                use(OLD)
                before = step()
                use(NEW)
                after = step()
                diff = max(float(np.max(np.abs(before[0][l] - after[0][l]))) for l in W)
                k = bench.calibrate(step, 0.05)
                samples = {"before": [], "after": []}
                for r in range(opts.rounds):
                    for name in ("before", "after") if r % 2 == 0 else ("after", "before"):
                        use(OLD if name == "before" else NEW)
                        samples[name].append(bench.timed_block(step, k)[0])
                use(NEW)
                t0, t1 = statistics.median(samples["before"]), statistics.median(samples["after"])
                rows.append(
                    [
                        "-".join(map(str, sizes)),
                        dtype,
                        N,
                        bench.fmt_spread(samples["before"]),
                        bench.fmt_spread(samples["after"]),
                        f"{t0 / t1:.2f}×",
                        f"{diff:.0e}",
                    ]
                )
    print(
        tabulate(
            rows,
            headers=["network", "dtype", "batch", "before", "after", "speed-up", "largest |ΔW_new|"],
            tablefmt="github",
            disable_numparse=True,
        )
    )


if __name__ == "__main__":
    main()
