"""Chapter 12's shipped tree-regularisation studies on the parabola task (the method itself:
`helpers.treereg_model`; the command line that writes these files: `python -m helpers.treereg`).

`sweep` trains every regulariser at several strengths and seeds (`treereg_sweep.npz`);
`rerun_spread` measures how far single runs move when the arithmetic changes by rounding
steps (`treereg_spread.npz`), and `rerun_band` turns it into the band within which a rerun
on another machine is compared with a shipped run; `extra_runs` retrains a finer L2 grid and
the key comparison's settings with their test logits (`treereg_extra.npz`, not shipped; its L2
grid alone, `treereg_extra_l2.npz`, is shipped);
`live_run` / `load_live_run` store and load chapter 12's tree-regularised run
(`treereg_live.npz`); `load_sweep` reads any of these files from `helpers/pretrained`.

Shape glossary: P flattened network parameters, M gathered (weights, APL) pairs, S settings,
R reruns, G grid points per side.
"""

from __future__ import annotations

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from sklearn.tree import DecisionTreeClassifier

from helpers import metrics as metrics_lib
from helpers.treereg_model import (
    ParabolaData,
    RegularisedRun,
    average_path_length,
    evaluate,
    make_mlp,
    parabola_data,
    train_regularised,
)

# ----------------------------------------------------------------------------- the sweep

SWEEP_FILE = "treereg_sweep.npz"  # in helpers/pretrained, written by `python -m helpers.treereg`
SWEEP_STRENGTHS = {
    "none": (0.0,),
    "l1": (3e-4, 1e-3, 3e-3, 5e-3, 1e-2),
    "l2": (1e-3, 3e-3, 5e-3, 1e-2, 3e-2),
    "tree": (0.3, 1.0, 3.0, 10.0, 20.0, 30.0),
}
TREE_DEPTHS = (1, 2, 3, 4, 5, 6)  # the plain decision trees of the comparison


def grid(n: int = 41) -> np.ndarray:
    """`[n * n, 2]` points on a regular grid over the unit square (x1 varies fastest)."""
    g = np.linspace(0.0, 1.0, n, dtype=np.float32)
    return np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)


def sweep_run(data: ParabolaData, *, regulariser: str, strength: float, seed: int, hidden: tuple[int, ...] = (100, 100, 10),
              steps: int = 1500, grid_n: int = 41, jitter: float = 0.0, jitter_seed: int = 0,
              test_logits: bool = False) -> tuple[dict, dict]:
    """One run of the sweep: `(row, history)`, where `row` holds test AUC, APL, fidelity,
    training seconds and the predicted probability on a `grid_n x grid_n` grid (`[G, G]`,
    rows = x2), with `test_logits` also the logits at the test inputs `[N_test]`; `history`
    is `train_regularised`'s (`jitter`: see there)."""
    model = make_mlp(hidden)
    run = train_regularised(data.x_train, data.y_train, regulariser=regulariser, strength=strength,
                            key=jax.random.PRNGKey(seed), model=model, steps=steps, jitter=jitter, jitter_seed=jitter_seed)
    ev = evaluate(model, run.params, data)
    prob = jax.nn.sigmoid(model.apply(run.params, jnp.asarray(grid(grid_n))))
    row = dict(regulariser=regulariser, strength=strength, seed=seed, test_auc=ev.test_auc, apl=ev.apl,
               fidelity=ev.fidelity, seconds=run.seconds, grid=np.asarray(prob).reshape(grid_n, grid_n).astype(np.float16))
    if test_logits:
        row["test_logits"] = np.asarray(model.apply(run.params, jnp.asarray(data.x_test, jnp.float32)))
    return row, run.history


def sweep(
    *,
    strengths: dict[str, tuple[float, ...]] = SWEEP_STRENGTHS,
    seeds: tuple[int, ...] = (0, 1, 2),
    data_seed: int = 0,
    n: int = 500,
    hidden: tuple[int, ...] = (100, 100, 10),
    steps: int = 1500,
    grid_n: int = 41,
    depths: tuple[int, ...] = TREE_DEPTHS,
) -> dict[str, np.ndarray]:
    """Trains one network per (regulariser, strength, seed) on the parabola task and returns
    flat arrays, one row per run (the fields of `sweep_run`); the tree runs' per-chunk true
    and surrogate APL (`track_*`, with the run's row index); plain decision trees of the
    given depths fitted to the training labels (`dt_*`); and the setting (`config_*`)."""
    data = parabola_data(n, seed=data_seed)
    rows, track = [], {"track_run": [], "track_step": [], "track_apl": [], "track_surrogate": []}
    for reg, values in strengths.items():
        for strength in values:
            for seed in seeds:
                row, h = sweep_run(data, regulariser=reg, strength=strength, seed=seed, hidden=hidden, steps=steps, grid_n=grid_n)
                rows.append(row)
                if reg == "tree":
                    track["track_run"].append(np.full(len(h["step"]), len(rows) - 1))
                    for k, v in (("track_step", "step"), ("track_apl", "apl"), ("track_surrogate", "apl_surrogate")):
                        track[k].append(h[v])
    out = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    out.update({k: np.concatenate(v) if v else np.zeros(0) for k, v in track.items()})
    trees = [DecisionTreeClassifier(max_depth=dep, random_state=0).fit(data.x_train, data.y_train) for dep in depths]
    out["dt_depth"] = np.array(depths)
    out["dt_apl"] = np.array([average_path_length(t, data.x_train) for t in trees])
    out["dt_test_auc"] = np.array([metrics_lib.auroc(data.y_test, t.predict_proba(data.x_test)[:, 1]) for t in trees])
    out.update(config_seeds=np.array(seeds), config_data_seed=np.array(data_seed), config_n=np.array(n),
               config_hidden=np.array(hidden), config_steps=np.array(steps), config_grid_n=np.array(grid_n))
    return out


EXTRA_FILE = "treereg_extra.npz"  # written by `python -m helpers.treereg --extra`
# A finer L2 grid where the sweep's L2 settings jump from APL ~2.7 to ~1.2, and the two
# settings of chapter 12's key comparison below the threshold, rerun for their test logits.
EXTRA_STRENGTHS = {"l2": (6e-3, 7e-3, 8e-3, 9e-3, 1e-2), "tree": (20.0,)}
EXTRA_L2_FILE = "treereg_extra_l2.npz"  # shipped: `python -m helpers.treereg --extra --l2-only`
# The L2 grid alone (its ends, 0.005 and 0.01, are sweep settings: the rerun reproduces them).
EXTRA_L2_STRENGTHS = (5e-3, 6e-3, 7e-3, 8e-3, 9e-3, 1e-2)


def extra_runs(*, strengths=EXTRA_STRENGTHS, seeds: tuple[int, ...] = (0, 1, 2), data_seed: int = 0, n: int = 500,
               hidden: tuple[int, ...] = (100, 100, 10), steps: int = 1500) -> dict[str, np.ndarray]:
    """`sweep_run` (with test logits, `extra_test_logits [R, N_test]`) for each (regulariser,
    strength, seed); fields prefixed `extra_`, with the test labels and the setting."""
    data = parabola_data(n, seed=data_seed)
    rows = [sweep_run(data, regulariser=r, strength=s, seed=seed, hidden=hidden, steps=steps, grid_n=2, test_logits=True)[0]
            for r, values in strengths.items() for s in values for seed in seeds]
    out = {f"extra_{k}": np.array([row[k] for row in rows]) for k in rows[0] if k != "grid"}
    out.update(extra_y_test=data.y_test, extra_seeds=np.array(seeds), extra_data_seed=np.array(data_seed),
               extra_steps=np.array(steps), extra_hidden=np.array(hidden))
    return out


LIVE_FILE = "treereg_live.npz"  # written by `python -m helpers.treereg --live`


def live_run(*, regulariser: str = "tree", strength: float = 3.0, seed: int = 0, data_seed: int = 0, n: int = 500,
             hidden: tuple[int, ...] = (100, 100, 10), steps: int = 1500) -> dict[str, np.ndarray]:
    """Chapter 12's tree-regularised run (the sweep's code path: `train_regularised`, then
    `evaluate`), stored because it takes minutes: the final flattened weights `live_params
    [P]`, the history `live_step, live_loss, live_apl, live_apl_surrogate [chunks]`, the
    gathered pairs' APLs `live_pair_apl [M]`, `evaluate`'s `final_test_auc, final_apl,
    final_fidelity`, `live_seconds` and the setting (`config_*`)."""
    data = parabola_data(n, seed=data_seed)
    model = make_mlp(hidden)
    run = train_regularised(data.x_train, data.y_train, regulariser=regulariser, strength=strength,
                            key=jax.random.PRNGKey(seed), model=model, steps=steps)
    ev = evaluate(model, run.params, data)
    out = {f"live_{k}": v for k, v in run.history.items()}
    out.update(live_params=np.asarray(ravel_pytree(run.params)[0]), live_pair_apl=run.pairs[1], live_seconds=np.array(run.seconds),
               final_test_auc=np.array(ev.test_auc), final_apl=np.array(ev.apl), final_fidelity=np.array(ev.fidelity),
               config_regulariser=np.array(regulariser), config_strength=np.array(strength), config_seed=np.array(seed),
               config_data_seed=np.array(data_seed), config_n=np.array(n), config_hidden=np.array(hidden), config_steps=np.array(steps))
    return out


def load_live_run(model: hk.Transformed, path=None) -> RegularisedRun:
    """`live_run`'s file (default: the shipped one) as a `RegularisedRun` of `model` (its
    architecture must be the file's); `pairs` holds the APLs only (weights `[0, P]`)."""
    live = load_sweep(path, name=LIVE_FILE)
    hidden = tuple(int(h) for h in live["config_hidden"])
    if model is not make_mlp(hidden):
        raise ValueError(f"model must be make_mlp({hidden}), the architecture of the stored run")
    unravel = ravel_pytree(model.init(jax.random.PRNGKey(0), jnp.zeros((1, 2), jnp.float32)))[1]
    history = {k: live[f"live_{k}"] for k in ("step", "loss", "apl", "apl_surrogate")}
    return RegularisedRun(unravel(jnp.asarray(live["live_params"])), str(live["config_regulariser"]), float(live["config_strength"]),
                          history, (np.zeros((0, live["live_params"].size)), live["live_pair_apl"]), float(live["live_seconds"]))


SPREAD_FILE = "treereg_spread.npz"  # written by `python -m helpers.treereg --spread`
# The runs that chapter 12 retrains live and the one the tests retrain: (regulariser, strength, seed).
SPREAD_SETTINGS = (("none", 0.0, 0), ("l2", 3e-3, 0), ("tree", 3.0, 0))


def rerun_spread(
    *,
    settings=SPREAD_SETTINGS,
    reruns: int = 16,
    jitter: float = 1e-7,
    data_seed: int = 0,
    n: int = 500,
    hidden: tuple[int, ...] = (100, 100, 10),
    steps: int = 1500,
) -> dict[str, np.ndarray]:
    """How far a run of the sweep moves when its arithmetic changes by rounding steps.

    Another machine (other vector instructions, another thread count) sums in another
    order, and the results differ in the last bits; training then carries the difference
    on. To measure how far, each `(regulariser, strength, seed)` of `settings` is retrained
    `reruns` times with its initial weights jittered by `jitter` (draws 1..reruns), next to
    the unjittered run. Returns `spread_*` arrays: the settings `[S]`, the unjittered run's
    `test_auc`, `apl`, `fidelity` `[S]` and the reruns' `[S, R]`."""
    if reruns < 2:
        raise ValueError(f"reruns must be at least 2 to measure a spread, got {reruns}")
    data = parabola_data(n, seed=data_seed)
    keys = ("test_auc", "apl", "fidelity")
    base = {k: [] for k in keys}
    jittered = {k: [] for k in keys}
    for reg, strength, seed in settings:
        rows = [sweep_run(data, regulariser=reg, strength=strength, seed=seed, hidden=hidden, steps=steps, grid_n=2,
                          jitter=jitter if r else 0.0, jitter_seed=r)[0] for r in range(reruns + 1)]
        for k in keys:
            base[k].append(rows[0][k])
            jittered[k].append([row[k] for row in rows[1:]])
    out = {"spread_regulariser": np.array([s[0] for s in settings]), "spread_strength": np.array([s[1] for s in settings], float),
           "spread_seed": np.array([s[2] for s in settings]), "spread_jitter": np.array(jitter),
           "spread_steps": np.array(steps), "spread_hidden": np.array(hidden)}
    out.update({f"spread_{k}": np.array(v) for k, v in base.items()})
    out.update({f"spread_{k}_reruns": np.array(v) for k, v in jittered.items()})
    return out


# The smallest change of each number that means anything: AUC 0.005; APL: one of the 350
# training paths one question longer; fidelity: one of the 150 test points.
BAND_FLOOR = {"test_auc": 0.005, "apl": 1 / 350, "fidelity": 1 / 150}


def rerun_band(spread: dict[str, np.ndarray], regulariser: str, strength: float, metric: str, *, seed: int = 0) -> tuple[float, float]:
    """Where a rerun of a setting of `rerun_spread`'s output may land, on any machine: the
    range of its unjittered run and reruns, widened on each side by half that range plus
    `BAND_FLOOR[metric]`. (The range of 16 draws alone is too narrow: a 17th draw falls
    outside it about one time in nine.)"""
    if metric not in BAND_FLOOR:
        raise ValueError(f"metric must be one of {sorted(BAND_FLOOR)}, got {metric!r}")
    hit = np.flatnonzero((spread["spread_regulariser"] == regulariser) & np.isclose(spread["spread_strength"], strength)
                         & (spread["spread_seed"] == seed))
    if len(hit) != 1:
        raise ValueError(f"no spread measured for ({regulariser!r}, {strength}, seed {seed}); run `python -m helpers.treereg --spread`")
    values = np.append(spread[f"spread_{metric}_reruns"][hit[0]], spread[f"spread_{metric}"][hit[0]])
    half = 0.5 * np.ptp(values) + BAND_FLOOR[metric]
    return float(values.min() - half), float(values.max() + half)


def load_sweep(path=None, *, name: str = SWEEP_FILE) -> dict[str, np.ndarray]:
    """A shipped file of `helpers/pretrained` (the sweep; `name=SPREAD_FILE` for the rerun
    spread), or the one at `path`."""
    from helpers.model import pretrained_dir

    path = path or pretrained_dir() / name
    with np.load(path) as f:
        return {k: f[k] for k in f.files}
