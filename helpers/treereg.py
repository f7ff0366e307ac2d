"""Tree regularisation (Wu et al., AAAI 2018): train a network so that a small decision tree
can mimic it.

The cost of simulating a model by hand is measured by the *average path length* (APL) of a
decision tree fitted to the model's own predictions: how many yes/no questions the average
input needs. APL is not differentiable in the weights, so a small *surrogate* network learns
to predict it from the flattened weights, on (weights, APL) pairs gathered during training
and refitted periodically, and the training objective adds `strength * surrogate(weights)`.

`python -m helpers.treereg` runs chapter 12's sweep (every regulariser at several
strengths and seeds) and writes `helpers/pretrained/treereg_sweep.npz`; `--small` is the
smoke-test setting the tests run. `--spread` measures how far single runs move when the
arithmetic changes by rounding steps (`rerun_spread`, `helpers/pretrained/treereg_spread.npz`):
unregularised and tree-regularised training are chaotic, so a rerun on another machine is
compared with a shipped run only within that spread (`rerun_band`). `--extra` retrains a
finer L2 grid and the two settings of chapter 12's key comparison with their test logits
(`extra_runs`; default output `helpers/pretrained/treereg_extra.npz`, not shipped). `--live` trains
chapter 12's tree-regularised run (lambda 3, seed 0; minutes of CPU) and stores its weights and
history (`live_run`, `load_live_run`, `helpers/pretrained/treereg_live.npz`). The same methods on the peptide
descriptors: `helpers.treereg_real`.

Shape glossary: B batch, D input dimensions (2 here), P flattened network parameters,
M gathered (weights, APL) pairs, T steps in one training chunk.
"""

from __future__ import annotations

import functools
import time
from typing import NamedTuple

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from sklearn.tree import DecisionTreeClassifier

from helpers import metrics as metrics_lib
from helpers import training as training_lib

REGULARISERS = ("none", "l1", "l2", "tree")
MIN_SAMPLES_LEAF = 25  # the reference code's mimic tree


# ----------------------------------------------------------------------------- data


def parabola_boundary(x1):
    """The true decision boundary: class 1 above `x2 = 5 (x1 - 0.5)^2 + 0.4`."""
    return 5.0 * (np.asarray(x1) - 0.5) ** 2 + 0.4


class ParabolaData(NamedTuple):
    x_train: np.ndarray  # [N_train, 2]
    y_train: np.ndarray  # [N_train] in {0, 1}, some flipped
    x_test: np.ndarray  # [N_test, 2]
    y_test: np.ndarray  # [N_test] in {0, 1}, some flipped
    flipped_train: np.ndarray  # [N_train] bool: label flipped (noise)
    flipped_test: np.ndarray  # [N_test] bool


def parabola_data(
    n: int = 500, *, seed: int = 0, flip: float = 0.1, band: float = 0.2, test_fraction: float = 0.3
) -> ParabolaData:
    """`n` points uniform in the unit square, labelled by `parabola_boundary`; `flip * n`
    labels, drawn among the points within `band` (vertically) of the boundary, are flipped;
    `test_fraction` of the points are held out."""
    if n < 10 or not 0 <= flip < 1 or band <= 0 or not 0 < test_fraction < 1:
        raise ValueError(f"need n >= 10, 0 <= flip < 1, band > 0, 0 < test_fraction < 1; got {n}, {flip}, {band}, {test_fraction}")
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, 2))
    gap = x[:, 1] - parabola_boundary(x[:, 0])
    y = (gap > 0).astype(np.int64)
    near = np.flatnonzero(np.abs(gap) < band)
    k = int(round(flip * n))
    if k > len(near):
        raise ValueError(f"only {len(near)} points lie within band {band} of the boundary, fewer than the {k} to flip: widen the band")
    flipped = np.zeros(n, bool)
    flipped[rng.choice(near, k, replace=False)] = True
    y[flipped] = 1 - y[flipped]
    perm = rng.permutation(n)
    test, train = perm[: int(round(test_fraction * n))], perm[int(round(test_fraction * n)) :]
    return ParabolaData(x[train], y[train], x[test], y[test], flipped[train], flipped[test])


# ----------------------------------------------------------------------------- trees


def average_path_length(tree: DecisionTreeClassifier, x) -> float:
    """Mean number of decision nodes on the paths of the inputs `x [B, D]` to their leaves
    (the leaf itself is not a decision; a single-leaf tree has APL 0)."""
    x = np.asarray(x)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"x must be a non-empty [B, D] array, got shape {x.shape}")
    return float(np.asarray(tree.decision_path(x).sum(axis=1)).mean() - 1.0)


def mimic_tree(x, labels, *, min_samples_leaf: int = MIN_SAMPLES_LEAF) -> DecisionTreeClassifier:
    """A decision tree fitted to a model's predicted labels `[B]` at the inputs `x [B, D]`."""
    return DecisionTreeClassifier(min_samples_leaf=min_samples_leaf, random_state=0).fit(x, labels)


def fidelity(tree: DecisionTreeClassifier, x, labels) -> float:
    """Share of inputs where the tree predicts the model's label."""
    return float(np.mean(tree.predict(x) == np.asarray(labels)))


# ----------------------------------------------------------------------------- network


def make_mlp(hidden=(100, 100, 10)) -> hk.Transformed:
    """`x [B, D] -> logits [B]`: tanh MLP (the reference code's activation) with the given
    hidden widths. The same widths give the same object, so that the jitted training chunk
    compiles once per architecture."""
    return _make_mlp(tuple(int(h) for h in hidden))


@functools.cache
def _make_mlp(hidden: tuple[int, ...]) -> hk.Transformed:
    def forward(x: jax.Array) -> jax.Array:
        return hk.nets.MLP([*hidden, 1], activation=jnp.tanh, name="mlp")(x)[:, 0]

    return hk.without_apply_rng(hk.transform(forward))


def weight_penalty(params: hk.Params, kind: str) -> jax.Array:
    """Sum of |w| ("l1") or w^2 ("l2") over the weight matrices (biases are not penalised)."""
    ws = [p for path, p in jax.tree_util.tree_leaves_with_path(params) if "w" == path[-1].key]
    if kind == "l1":
        return sum(jnp.abs(w).sum() for w in ws)
    if kind == "l2":
        return sum((w**2).sum() for w in ws)
    raise ValueError(f"weight penalty must be 'l1' or 'l2', got {kind!r}")


# ----------------------------------------------------------------------------- surrogate


class Surrogate(NamedTuple):
    """Predicts APL from flattened weights `[P]`: standardised input, one hidden layer,
    softplus output."""

    params: dict
    w_mean: jax.Array  # [P]
    w_scale: jax.Array  # [P]
    apl_mean: jax.Array  # []
    apl_scale: jax.Array  # []


def surrogate_apl(s: Surrogate, w: jax.Array) -> jax.Array:
    """Predicted APL of flattened weights `w [P]` (or `[M, P]` -> `[M]`); differentiable."""
    z = (w - s.w_mean) / s.w_scale
    h = jnp.tanh(z @ s.params["w1"] + s.params["b1"])
    # Softplus keeps the prediction >= 0, as APL is: a linear output rewards pushing the
    # weights ever further past the smallest APL it has seen (the reference code's
    # surrogate ends in a softplus too).
    return jax.nn.softplus(s.apl_mean + s.apl_scale * (h @ s.params["w2"] + s.params["b2"]))


@functools.partial(jax.jit, static_argnames=("steps",))
def _fit_surrogate(s: Surrogate, w: jax.Array, apl: jax.Array, mask: jax.Array, *, steps: int, learning_rate, weight_decay):
    opt = optax.adamw(learning_rate, weight_decay=weight_decay)

    def loss(p):
        pred = surrogate_apl(s._replace(params=p), w)
        return jnp.sum(mask * ((pred - apl) / s.apl_scale) ** 2) / jnp.sum(mask)

    def step(carry, _):
        p, o = carry
        g = jax.grad(loss)(p)
        u, o = opt.update(g, o, p)
        return (optax.apply_updates(p, u), o), None

    (p, _), _ = jax.lax.scan(step, (s.params, opt.init(s.params)), None, length=steps)
    return p


def init_surrogate(num_weights: int, *, key: jax.Array, hidden: int = 25) -> Surrogate:
    """A random surrogate for `num_weights` flattened weights, with identity standardisation."""
    k1, k2 = jax.random.split(key)
    params = {
        "w1": jax.random.normal(k1, (num_weights, hidden)) / np.sqrt(num_weights),
        "b1": jnp.zeros(hidden),
        "w2": jax.random.normal(k2, (hidden,)) / np.sqrt(hidden),
        "b2": jnp.zeros(()),
    }
    return Surrogate(params, jnp.zeros(num_weights), jnp.ones(num_weights), jnp.zeros(()), jnp.ones(()))


def fit_surrogate(
    weights,  # [M, P]
    apl,  # [M]
    *,
    key: jax.Array,
    hidden: int = 25,
    steps: int = 500,
    learning_rate: float = 1e-3,
    weight_decay: float = 1e-4,
    init: Surrogate | None = None,
    pad_to: int | None = None,
) -> Surrogate:
    """Fits the surrogate to (weights, APL) pairs by full-batch AdamW on the squared error;
    `init` warm-starts from an earlier surrogate (its parameters, new standardisation).
    `pad_to` pads the pairs with masked rows to a fixed count, so that a growing set of
    pairs does not recompile the fit for every new M."""
    w, apl = jnp.asarray(weights, jnp.float32), jnp.asarray(apl, jnp.float32)
    if w.ndim != 2 or apl.shape != (len(w),) or len(w) < 2:
        raise ValueError(f"need weights [M, P] and APL [M] with M >= 2, got {w.shape} and {apl.shape}")
    params = (init or init_surrogate(w.shape[1], key=key, hidden=hidden)).params
    s = Surrogate(params, w.mean(0), w.std(0) + 1e-3, apl.mean(), apl.std() + 1e-3)
    m = len(w)
    pad = max(0, (pad_to or m) - m)
    w, apl = jnp.pad(w, ((0, pad), (0, 0))), jnp.pad(apl, (0, pad))
    mask = jnp.arange(m + pad) < m
    return s._replace(params=_fit_surrogate(s, w, apl, mask, steps=steps, learning_rate=learning_rate, weight_decay=weight_decay))


# ----------------------------------------------------------------------------- training


class RegularisedRun(NamedTuple):
    params: hk.Params  # the final network
    regulariser: str
    strength: float
    history: dict  # per chunk: step, loss, apl (true), apl_surrogate (tree only, else nan)
    pairs: tuple[np.ndarray, np.ndarray]  # gathered (weights [M, P], APL [M]) (tree only)
    seconds: float


@functools.partial(jax.jit, static_argnames=("model", "kind", "learning_rate", "steps"))
def _chunk(state, x, y, strength, surrogate, *, model, kind, learning_rate, steps):
    """`steps` full-batch Adam updates; returns the state and the flattened weights after each."""
    optimizer = optax.adam(learning_rate)

    def objective(params):
        data_loss = training_lib.bce_loss(model.apply(params, x), y)
        if kind in ("l1", "l2"):
            return data_loss + strength * weight_penalty(params, kind)
        if kind == "tree":
            return data_loss + strength * surrogate_apl(surrogate, ravel_pytree(params)[0])
        return data_loss

    def step(state, _):
        params, opt_state = state
        loss, grads = jax.value_and_grad(objective)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return (params, opt_state), (ravel_pytree(params)[0], loss)

    return jax.lax.scan(step, state, None, length=steps)


def jitter_params(params: hk.Params, scale: float, *, key: jax.Array) -> hk.Params:
    """Every parameter times `1 + scale * N(0, 1)` (independent draws; zeros stay zero)."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, len(leaves))
    return treedef.unflatten([p * (1 + scale * jax.random.normal(k, p.shape, p.dtype)) for p, k in zip(leaves, keys, strict=True)])


def network_mimic(model: hk.Transformed, params: hk.Params, x, *, min_samples_leaf: int = MIN_SAMPLES_LEAF) -> DecisionTreeClassifier:
    """The mimic tree of the network's predicted labels on `x [B, D]`."""
    labels = np.asarray(model.apply(params, jnp.asarray(x, jnp.float32))) > 0
    return mimic_tree(x, labels, min_samples_leaf=min_samples_leaf)


def network_apl(model: hk.Transformed, params: hk.Params, x, *, min_samples_leaf: int = MIN_SAMPLES_LEAF) -> float:
    """APL of the network's mimic tree on `x [B, D]`."""
    return average_path_length(network_mimic(model, params, x, min_samples_leaf=min_samples_leaf), x)


def train_regularised(
    x,  # [N, D]
    y,  # [N] in {0, 1}
    *,
    regulariser: str,
    strength: float,
    key: jax.Array,
    model: hk.Transformed | None = None,
    steps: int = 1500,
    learning_rate: float = 3e-3,
    retrain_every: int = 25,
    pairs_per_chunk: int = 5,
    min_samples_leaf: int = MIN_SAMPLES_LEAF,
    surrogate_steps: int = 100,
    max_pairs: int = 250,
    jitter: float = 0.0,
    jitter_seed: int = 0,
) -> RegularisedRun:
    """Trains the network (full-batch Adam) on `mean BCE + strength * penalty`.

    "tree": every `retrain_every` steps, the true APL of `pairs_per_chunk` weight vectors of
    the last chunk joins the gathered pairs, and the surrogate is refitted (warm start) on
    the latest `max_pairs` of them; the first chunk runs without the penalty, to gather
    the first pairs.
    Note the scale: `strength` multiplies the *mean* loss over examples; the reference code
    sums over examples, so its strength is ours times N.
    `jitter > 0` multiplies every initial parameter by `1 + jitter * N(0, 1)` (draw
    `jitter_seed`): with `jitter` ~ 1e-7, a change of the size of one float32 rounding step,
    which stands in for another machine's arithmetic (see `rerun_spread`).
    """
    if regulariser not in REGULARISERS:
        raise ValueError(f"regulariser must be one of {REGULARISERS}, got {regulariser!r}")
    if not (np.isfinite(jitter) and jitter >= 0):
        raise ValueError(f"jitter must be a finite number >= 0 (a relative perturbation of the initial weights), got {jitter!r}")
    if strength < 0 or steps < retrain_every or retrain_every < 1 or not 1 <= pairs_per_chunk <= retrain_every:
        raise ValueError("need strength >= 0, 1 <= retrain_every <= steps, 1 <= pairs_per_chunk <= retrain_every")
    x = np.asarray(x, np.float32)
    y_j = jnp.asarray(y, jnp.float32)
    model = model or make_mlp()
    init_key, sur_key = jax.random.split(key)
    params = model.init(init_key, jnp.asarray(x[:1]))
    if jitter:
        params = jitter_params(params, jitter, key=jax.random.PRNGKey(jitter_seed))
    flat, unravel = ravel_pytree(params)
    state = (params, optax.adam(learning_rate).init(params))
    x_j = jnp.asarray(x)
    # Until the first pairs are gathered the penalty's strength is 0, so this untrained
    # surrogate only fixes the shapes the jitted chunk compiles for.
    sur_key, k = jax.random.split(sur_key)
    surrogate = init_surrogate(flat.size, key=k)
    pair_w, pair_apl = [], []
    history = {"step": [], "loss": [], "apl": [], "apl_surrogate": []}
    fitted = None
    t0 = time.perf_counter()
    for chunk in range(steps // retrain_every):
        active = regulariser != "tree" or fitted is not None
        state, (ws, losses) = _chunk(
            state, x_j, y_j, jnp.float32(strength if active else 0.0), surrogate,
            model=model, kind=regulariser, learning_rate=float(learning_rate), steps=retrain_every,
        )
        apl_now = network_apl(model, state[0], x, min_samples_leaf=min_samples_leaf)
        history["step"].append((chunk + 1) * retrain_every)
        history["loss"].append(float(losses[-1]))
        history["apl"].append(apl_now)
        if regulariser == "tree":
            history["apl_surrogate"].append(float(surrogate_apl(surrogate, ws[-1])) if fitted is not None else np.nan)
            picks = np.linspace(0, retrain_every - 1, pairs_per_chunk).round().astype(int)
            for i in picks[:-1]:
                pair_w.append(np.asarray(ws[i]))
                pair_apl.append(network_apl(model, unravel(ws[i]), x, min_samples_leaf=min_samples_leaf))
            pair_w.append(np.asarray(ws[-1]))
            pair_apl.append(apl_now)
            sur_key, k = jax.random.split(sur_key)
            fitted = fit_surrogate(np.stack(pair_w[-max_pairs:]), np.array(pair_apl[-max_pairs:]), key=k,
                                   init=fitted, steps=surrogate_steps, pad_to=max_pairs)
            surrogate = fitted
        else:
            history["apl_surrogate"].append(np.nan)
    pairs = (np.stack(pair_w), np.array(pair_apl)) if pair_w else (np.zeros((0, flat.size)), np.zeros(0))
    return RegularisedRun(state[0], regulariser, float(strength), {k: np.array(v) for k, v in history.items()},
                          pairs, time.perf_counter() - t0)


class Evaluation(NamedTuple):
    test_auc: float
    apl: float  # of the mimic tree, on the training inputs
    fidelity: float  # of the mimic tree to the network, on the test inputs
    tree: DecisionTreeClassifier


def evaluate(model: hk.Transformed, params: hk.Params, data: ParabolaData, *, min_samples_leaf: int = MIN_SAMPLES_LEAF) -> Evaluation:
    """Test AUC of the network, APL of its mimic tree, and the tree's fidelity."""
    test_logits = np.asarray(model.apply(params, jnp.asarray(data.x_test, jnp.float32)))
    tree = network_mimic(model, params, data.x_train, min_samples_leaf=min_samples_leaf)
    return Evaluation(
        metrics_lib.auroc(data.y_test, test_logits),
        average_path_length(tree, data.x_train),
        fidelity(tree, data.x_test, test_logits > 0),
        tree,
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


def main(argv=None) -> None:
    import argparse

    from helpers.model import pretrained_dir

    p = argparse.ArgumentParser(description="Run the tree-regularisation sweep of chapter 12 (or the rerun spread) and save it.")
    p.add_argument("--out", default=None, help="output .npz (default: the shipped file)")
    p.add_argument("--spread", action="store_true", help="measure the rerun spread (rerun_spread) instead of the sweep")
    p.add_argument("--reruns", type=int, default=16, help="with --spread: jittered reruns per setting")
    p.add_argument("--steps", type=int, default=1500, help="training steps per run")
    p.add_argument("--seeds", type=int, default=3, help="network initialisations per setting")
    p.add_argument("--small", action="store_true", help="one strength per regulariser, one seed, a small network: a smoke test")
    p.add_argument("--extra", action="store_true", help="the finer L2 grid and the key comparison's test logits (extra_runs)")
    p.add_argument("--live", action="store_true", help="chapter 12's tree-regularised run, lambda 3, seed 0 (live_run)")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    if a.live:
        out_path = a.out or str(pretrained_dir() / LIVE_FILE)
        out = live_run(steps=a.steps, **(dict(hidden=(16, 16)) if a.small else {}))
        out["config_command"] = np.array("python -m helpers.treereg --live" + (" --small" if a.small else "") + f" --steps {a.steps}")
        np.savez_compressed(out_path, **out)
        print(f"1 run in {time.perf_counter() - t0:.0f} s -> {out_path}")
        return
    if a.extra:
        out_path = a.out or str(pretrained_dir() / EXTRA_FILE)
        kw = dict(strengths={"l2": (1e-2,)}, seeds=(0,), hidden=(16, 16)) if a.small else dict(seeds=tuple(range(a.seeds)))
        out = extra_runs(steps=a.steps, **kw)
        np.savez_compressed(out_path, **out)
        print(f"{len(out['extra_seed'])} runs in {time.perf_counter() - t0:.0f} s -> {out_path}")
        return
    if a.spread:
        out_path = a.out or str(pretrained_dir() / SPREAD_FILE)
        kw = dict(settings=(("tree", 3.0, 0),), hidden=(16, 16)) if a.small else {}
        out = rerun_spread(reruns=a.reruns, steps=a.steps, **kw)
        np.savez_compressed(out_path, **out)
        print(f"{len(out['spread_seed'])} settings x {a.reruns} reruns in {time.perf_counter() - t0:.0f} s -> {out_path}")
        return
    if a.small:
        kw = dict(strengths={"none": (0.0,), "l1": (1e-3,), "l2": (1e-2,), "tree": (3.0,)}, seeds=(0,),
                  hidden=(16, 16), grid_n=11, depths=(1, 2))
    else:
        kw = dict(seeds=tuple(range(a.seeds)))
    out_path = a.out or str(pretrained_dir() / SWEEP_FILE)
    out = sweep(steps=a.steps, **kw)
    np.savez_compressed(out_path, **out)
    print(f"{len(out['seed'])} runs in {time.perf_counter() - t0:.0f} s -> {out_path}")


if __name__ == "__main__":
    main()
