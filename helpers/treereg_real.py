"""Tree regularisation on the real task: MLPs on the eight peptide descriptors of hemolysis.

Wu et al. (AAAI 2018) test tree regularisation on real data sets after the parabola; this
module does the same on the course's task. `python -m helpers.treereg_real` trains a tanh
MLP on the descriptors of `sequences.descriptors` (length as its logarithm, every column
standardised with the training split's mean and standard deviation) under no penalty, L1,
L2 and tree regularisation at several strengths and seeds, fits plain decision trees of
several depths to the training labels, and writes `helpers/pretrained/treereg_real.npz`:
per run the test AUROC, the mimic tree's APL (training inputs) and fidelity (test inputs),
the axis alignment of the network's input gradients and the test logits (for a paired
bootstrap). `--small` is the smoke-test setting the tests run. The training itself is
`treereg.train_regularised`.

Axis alignment: a decision tree's boundary is made of pieces perpendicular to one input
axis, so its normal is a coordinate axis. For a network, the normal of its level set at `x`
is the input gradient `g` of the logit; `max_j g_j^2 / sum_j g_j^2` is 1 when `g` points
along one axis and `1/D` when it spreads evenly over all `D` (`axis_alignment`).

Shape glossary: B batch, D = 8 descriptors, R runs.
"""

from __future__ import annotations

import functools
import sys
import time
from typing import NamedTuple

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
from sklearn.tree import DecisionTreeClassifier

from helpers import metrics as metrics_lib
from helpers import treereg as tr

REAL_FILE = "treereg_real.npz"  # in helpers/pretrained, written by `python -m helpers.treereg_real`
REAL_STRENGTHS = {
    "none": (0.0,),
    "l1": (3e-4, 1e-3),
    "l2": (1e-3, 3e-3),
    "tree": (0.1, 0.3, 1.0),
}
REAL_DEPTHS = (1, 2, 3, 4, 5, 6, 8)
REAL_HIDDEN = (32, 32)
REAL_STEPS = 500
REAL_LEARNING_RATE = 1e-2
REAL_PAIRS_PER_CHUNK = 3  # (weights, APL) pairs per 25 steps (the parabola sweep takes 5)


class RealData(NamedTuple):
    x_train: np.ndarray  # [N_train, D] standardised descriptors
    y_train: np.ndarray  # [N_train] in {0, 1}
    x_test: np.ndarray  # [N_test, D]
    y_test: np.ndarray  # [N_test]
    names: tuple[str, ...]  # [D] descriptor names


def descriptor_inputs(d) -> np.ndarray:
    """Descriptors `[B, 8]` (columns of `sequences.DESCRIPTORS`) -> inputs `[B, 8]`: the length
    replaced by its logarithm (lengths span more than an order of magnitude)."""
    d = np.asarray(d, np.float64)
    if d.ndim != 2 or d.shape[1] != 8:
        raise ValueError(f"d must be descriptors of shape [B, 8], got {d.shape}")
    if np.any(d[:, 0] <= 0):
        raise ValueError("d: the length (column 0) must be positive")
    return np.column_stack([np.log(d[:, 0]), d[:, 1:]])


def real_data() -> RealData:
    """The hemolysis train and test splits as standardised descriptor inputs (the training
    split's mean and standard deviation)."""
    from helpers import data as data_lib
    from helpers import sequences as seqs

    train, test = data_lib.load_split("train"), data_lib.load_split("test")
    a, b = (descriptor_inputs(seqs.descriptors(s.sequences)) for s in (train, test))
    mu, sd = a.mean(axis=0), a.std(axis=0)
    return RealData(((a - mu) / sd).astype(np.float32), np.asarray(train.y, np.int64),
                    ((b - mu) / sd).astype(np.float32), np.asarray(test.y, np.int64),
                    tuple(name for name, _ in seqs.DESCRIPTORS))


def axis_alignment(grads) -> np.ndarray:
    """`max_j g_j^2 / sum_j g_j^2` per row of input gradients `grads [B, D]`: 1 for a gradient
    along one axis, `1/D` for one spread evenly; rows with a zero gradient give nan."""
    g = np.asarray(grads, np.float64)
    if g.ndim != 2 or g.shape[1] < 1:
        raise ValueError(f"grads must have shape [B, D], got {g.shape}")
    sq = g**2
    total = sq.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, sq.max(axis=1) / total, np.nan)


def isotropic_alignment(d: int, *, samples: int = 100_000, seed: int = 0) -> float:
    """Mean `axis_alignment` of Gaussian random directions in `d` dimensions (Monte Carlo):
    what a gradient with no preference for the axes scores."""
    if d < 1:
        raise ValueError(f"d must be >= 1, got {d}")
    return float(np.mean(axis_alignment(np.random.default_rng(seed).standard_normal((samples, d)))))


def input_gradients(model, params, x) -> np.ndarray:
    """Gradient of the logit with respect to each input, `x [B, D] -> [B, D]`."""
    f = lambda v: model.apply(params, v[None])[0]  # noqa: E731
    return np.asarray(jax.vmap(jax.grad(f))(jnp.asarray(x, jnp.float32)))


@functools.cache
def jitted_mlp(hidden: tuple[int, ...]) -> hk.Transformed:
    """`treereg.make_mlp(hidden)` with a jitted `apply`: the mimic trees of training call it
    on the whole training split every few steps, and unjitted it dominates the run time."""
    model = tr.make_mlp(hidden)
    return hk.Transformed(model.init, jax.jit(model.apply))


def real_run(data: RealData, *, regulariser: str, strength: float, seed: int, hidden=REAL_HIDDEN,
             steps: int = REAL_STEPS) -> dict:
    """One network (`treereg.train_regularised`, full-batch Adam at `REAL_LEARNING_RATE`):
    test AUROC, mimic-tree APL (training inputs) and fidelity (test inputs), mean axis
    alignment of the input gradients at the test inputs, test logits `[N_test]` and
    training seconds."""
    model = jitted_mlp(tuple(int(h) for h in hidden))
    run = tr.train_regularised(data.x_train, data.y_train, regulariser=regulariser, strength=strength,
                               key=jax.random.PRNGKey(seed), model=model, steps=steps,
                               learning_rate=REAL_LEARNING_RATE, pairs_per_chunk=REAL_PAIRS_PER_CHUNK)
    logits = np.asarray(model.apply(run.params, jnp.asarray(data.x_test)))
    tree = tr.network_mimic(model, run.params, data.x_train)
    align = axis_alignment(input_gradients(model, run.params, data.x_test))
    return dict(regulariser=regulariser, strength=strength, seed=seed, test_auc=metrics_lib.auroc(data.y_test, logits),
                apl=tr.average_path_length(tree, data.x_train), fidelity=tr.fidelity(tree, data.x_test, logits > 0),
                alignment=float(np.nanmean(align)) if np.isfinite(align).any() else np.nan,
                logits=logits.astype(np.float32), seconds=run.seconds)


def real_sweep(*, strengths=REAL_STRENGTHS, seeds=(0, 1, 2), hidden=REAL_HIDDEN, steps: int = REAL_STEPS,
               depths=REAL_DEPTHS, data: RealData | None = None) -> dict[str, np.ndarray]:
    """One `real_run` per (regulariser, strength, seed), as flat arrays (`logits [R, N_test]`);
    plain decision trees of the given depths on the training labels (`dt_*`, with their
    axis alignment 1 by construction); the setting (`config_*`)."""
    data = data or real_data()
    rows = []
    for r, values in strengths.items():
        for s in values:
            for seed in seeds:
                rows.append(real_run(data, regulariser=r, strength=s, seed=seed, hidden=hidden, steps=steps))
                print(f"{r} {s:g} seed {seed}: AUROC {rows[-1]['test_auc']:.3f}, APL {rows[-1]['apl']:.2f} "
                      f"({rows[-1]['seconds']:.0f} s)", file=sys.stderr, flush=True)
    out = {k: np.array([row[k] for row in rows]) for k in rows[0]}
    trees = [DecisionTreeClassifier(max_depth=dep, random_state=0).fit(data.x_train, data.y_train) for dep in depths]
    out["dt_depth"] = np.array(depths)
    out["dt_apl"] = np.array([tr.average_path_length(t, data.x_train) for t in trees])
    out["dt_test_auc"] = np.array([metrics_lib.auroc(data.y_test, t.predict_proba(data.x_test)[:, 1]) for t in trees])
    out["y_test"] = data.y_test
    out.update(config_seeds=np.array(seeds), config_hidden=np.array(hidden), config_steps=np.array(steps),
               config_learning_rate=np.array(REAL_LEARNING_RATE), config_pairs_per_chunk=np.array(REAL_PAIRS_PER_CHUNK),
               config_min_samples_leaf=np.array(tr.MIN_SAMPLES_LEAF), config_names=np.array(data.names),
               config_isotropic=np.array(isotropic_alignment(data.x_train.shape[1])))
    return out


def main(argv=None) -> None:
    import argparse

    from helpers.model import pretrained_dir

    p = argparse.ArgumentParser(description="Tree regularisation on the peptide descriptors (chapter 12); saves the runs.")
    p.add_argument("--out", default=None, help="output .npz (default: the shipped file)")
    p.add_argument("--steps", type=int, default=REAL_STEPS, help="full-batch training steps per run")
    p.add_argument("--seeds", type=int, default=3, help="network initialisations per setting")
    p.add_argument("--small", action="store_true", help="one strength per regulariser, one seed, a small network")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    if a.small:
        kw = dict(strengths={"none": (0.0,), "l2": (1e-3,), "tree": (0.03,)}, seeds=(0,), hidden=(8,), depths=(1, 2))
    else:
        kw = dict(seeds=tuple(range(a.seeds)))
    out = real_sweep(steps=a.steps, **kw)
    args = list(argv if argv is not None else sys.argv[1:])
    if "--out" in args:  # where the file was written is not part of how it was made
        del args[args.index("--out") : args.index("--out") + 2]
    out["config_command"] = np.array(" ".join(["python -m helpers.treereg_real", *args]))
    out_path = a.out or str(pretrained_dir() / REAL_FILE)
    np.savez_compressed(out_path, **out)
    print(f"{len(out['seed'])} runs in {time.perf_counter() - t0:.0f} s -> {out_path}")


if __name__ == "__main__":
    main()
