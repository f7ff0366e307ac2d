"""Tree regularisation (Wu et al., AAAI 2018), the method: the parabola task, average path
length, mimic trees, the APL surrogate and regularised training.

The cost of simulating a model by hand is measured by the *average path length* (APL) of a
decision tree fitted to the model's own predictions: how many yes/no questions the average
input needs. APL is not differentiable in the weights, so a small *surrogate* network learns
to predict it from the flattened weights, on (weights, APL) pairs gathered during training
and refitted periodically, and the training objective adds `strength * surrogate(weights)`.

Chapter 12's shipped studies built on it (sweep, rerun spread, the stored run) are in
`helpers.treereg_study`; `helpers.treereg` re-exports both modules and holds the command
line (`python -m helpers.treereg`).

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
