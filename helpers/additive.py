"""Additive ("block") networks: one small network per input feature, summed.

    f(x) = bias + sum_j g_j(x_j)

Each shape function `g_j` is a multilayer perceptron of the scalar `x_j` alone (a neural
additive model, Agarwal et al. 2021). The blocks never mix, so `g_j` *is* the explanation:
one curve per feature, exact, for every input. All blocks run together as batched einsums
over a leading feature axis of the weights, not as a Python loop over blocks.

Shape glossary: B batch, F features, H hidden units per block, G grid points, N examples.

Also here: training (`fit`, early stopping on a validation set), shape functions of the
network and of any other additive predictor, the export of a trained model to one lookup
table per feature (`to_tables`, prediction with numpy alone), and the toy problem with known
shape functions that chapter 11 and the tests use.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax

from helpers import training as training_lib
from helpers import validation

UNITS = ("relu", "exu")
LOSSES = {"mse": training_lib.mse_loss, "bce": training_lib.bce_loss}


def check_features(x, num_features: int | None = None, *, name: str = "x") -> np.ndarray:
    """`x` as float `[B, F]`; raises a clear error on a wrong shape or non-finite values."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a feature matrix of shape [B, F], got shape {x.shape}")
    if num_features is not None and x.shape[1] != num_features:
        raise ValueError(
            f"{name} has {x.shape[1]} features (columns) but the model has {num_features}"
        )
    if not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"{name} must hold numbers, got dtype {x.dtype}")
    if not np.all(np.isfinite(x)):
        row, col = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(
            f"{name} must be finite: {x[row, col]} at row {row}, feature {col}; "
            "impute or drop missing values first"
        )
    return x


class AdditiveNet(hk.Module):
    """Neural additive model: `x [B, F]` -> output `[B]` (or the terms `[B, F]`).

    Block `j` maps the scalar `x_j` through `len(hidden)` layers to one number; the
    weights of all blocks are stacked on a leading axis of size F (`w: [F, H_in, H_out]`),
    so one einsum evaluates every block at once.

    `units="relu"`: the first layer is `relu(w x + b)` with `w, b ~ N(0, 1)`, so the
    initial kinks spread over standardised inputs. `units="exu"`: exp-centred units
    `min(relu(exp(w) (x - c)), 1)` with `w ~ N(4, 0.5)` and `c ~ N(0, 0.5)`, as in
    Agarwal et al., which let a block change steeply (jagged shape functions).
    """

    def __init__(
        self,
        num_features: int,
        *,
        hidden: Sequence[int] = (32, 32),
        units: str = "relu",
        activation: Callable[[jax.Array], jax.Array] = jax.nn.relu,
        name: str | None = "additive_net",
    ):
        super().__init__(name=name)
        validation.check_int(num_features, "num_features", minimum=1)
        for h in hidden:
            validation.check_int(h, "each hidden size", minimum=1)
        if num_features < 1 or not hidden or min(hidden) < 1:
            raise ValueError(f"need num_features >= 1 and positive hidden sizes, got {num_features}, {hidden}")
        if units not in UNITS:
            raise ValueError(f"units must be one of {UNITS}, got {units!r}")
        self.num_features = num_features
        self.hidden = tuple(hidden)
        self.units = units
        self.activation = activation

    def __call__(self, x: jax.Array, *, terms: bool = False) -> jax.Array:
        f, h0 = self.num_features, self.hidden[0]
        if x.ndim != 2 or x.shape[1] != f:
            raise ValueError(f"expected features of shape [B, {f}], got {x.shape}")
        normal = hk.initializers.RandomNormal
        if self.units == "exu":
            w = hk.get_parameter("exu_w", [f, h0], init=normal(0.5, 4.0))
            c = hk.get_parameter("exu_c", [f, h0], init=hk.initializers.TruncatedNormal(0.5))
            h = jnp.clip(jnp.exp(w) * (x[:, :, None] - c), 0.0, 1.0)  # ReLU-1: [B, F, H]
        else:
            w = hk.get_parameter("w0", [f, h0], init=normal(1.0))
            b = hk.get_parameter("b0", [f, h0], init=normal(1.0))
            h = self.activation(x[:, :, None] * w + b)  # [B, F, H]
        for i, (h_in, h_out) in enumerate(zip(self.hidden[:-1], self.hidden[1:], strict=True), start=1):
            w = hk.get_parameter(f"w{i}", [f, h_in, h_out], init=normal(np.sqrt(2.0 / h_in)))
            b = hk.get_parameter(f"b{i}", [f, h_out], init=jnp.zeros)
            h = self.activation(jnp.einsum("bfh,fhk->bfk", h, w) + b)
        w_out = hk.get_parameter("w_out", [f, self.hidden[-1]], init=normal(1.0 / np.sqrt(self.hidden[-1])))
        contributions = jnp.einsum("bfh,fh->bf", h, w_out)  # [B, F]
        if terms:
            return contributions
        bias = hk.get_parameter("bias", [], init=jnp.zeros)
        return contributions.sum(axis=1) + bias


def make_additive(num_features: int, **config) -> hk.Transformed:
    """`hk.Transformed` (no RNG) of `AdditiveNet(num_features, **config)`:
    `apply(params, x [B, F]) -> [B]`, `apply(params, x, terms=True) -> [B, F]`."""

    def forward(x: jax.Array, terms: bool = False) -> jax.Array:
        return AdditiveNet(num_features, **config)(x, terms=terms)

    return hk.without_apply_rng(hk.transform(forward))


def bias(params: hk.Params) -> float:
    """The additive model's constant term."""
    return float(params["additive_net"]["bias"])


def num_parameters(params: hk.Params) -> int:
    return int(sum(np.size(p) for p in jax.tree_util.tree_leaves(params)))


class FitResult(NamedTuple):
    params: hk.Params  # the best by validation loss (the last ones without a validation set)
    best_epoch: int
    history: list[dict]  # per epoch: epoch, train_loss, val_loss (None without validation)
    seconds: float


def fit(
    model: hk.Transformed,
    x,  # [N, F]
    y,  # [N]
    *,
    key: jax.Array,
    loss: str = "mse",
    epochs: int = 300,
    batch_size: int = 64,
    learning_rate: float = 1e-2,
    decay: float = 0.995,
    weight_decay: float = 0.0,
    x_val=None,  # [M, F]
    y_val=None,  # [M]
    patience: int | None = None,
) -> FitResult:
    """Trains `model` by Adam(W) with the learning rate decayed by `decay` per epoch (the
    NAM schedule); keeps the parameters of the lowest validation loss and stops after
    `patience` epochs without improvement (when a validation set is given).

    `loss`: "mse" (regression, outputs are predictions) or "bce" (outputs are logits,
    `y` in {0, 1}). Mini-batches come from `key`; one epoch is one jitted `lax.scan`.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {tuple(LOSSES)}, got {loss!r}")
    validation.check_key(key)
    x = check_features(x).astype(np.float32)
    y = _check_targets(y, len(x), loss, "y")
    if (x_val is None) != (y_val is None):
        raise ValueError("give both x_val and y_val, or neither")
    validation.check_int(epochs, "epochs", minimum=1)
    validation.check_int(batch_size, "batch_size", minimum=1)
    validation.check_number(learning_rate, "learning_rate", positive=True)
    validation.check_number(decay, "decay", positive=True)
    validation.check_number(weight_decay, "weight_decay", nonnegative=True)
    if patience is not None:
        validation.check_int(patience, "patience", minimum=1)
    if epochs < 1 or not 1 <= batch_size <= len(x):
        raise ValueError(f"need epochs >= 1 and 1 <= batch_size <= {len(x)} examples")
    steps = len(x) // batch_size
    schedule = optax.exponential_decay(learning_rate, steps, decay, staircase=True)
    optimizer = optax.adamw(schedule, weight_decay=weight_decay)
    loss_fn = LOSSES[loss]
    epoch = training_lib.make_epoch(training_lib.make_update(model, optimizer, loss=loss_fn))
    init_key, key = jax.random.split(key)
    params = model.init(init_key, jnp.asarray(x[:1]))
    state = training_lib.TrainState(params, optimizer.init(params), jnp.zeros([], jnp.int32))
    if x_val is not None:
        x_val = jnp.asarray(check_features(x_val, x.shape[1], name="x_val"), jnp.float32)
        y_val = jnp.asarray(_check_targets(y_val, len(x_val), loss, "y_val"), jnp.float32)
        val_loss = jax.jit(lambda p: loss_fn(model.apply(p, x_val), y_val))
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    history, best = [], (np.inf, 0, params)
    t0 = time.perf_counter()
    for ep in range(1, epochs + 1):
        key, sub = jax.random.split(key)
        perm = jax.random.permutation(sub, len(x))[: steps * batch_size].reshape(steps, batch_size)
        state, train_loss = epoch(state, xj, yj, perm)
        v = float(val_loss(state.params)) if x_val is not None else None
        history.append({"epoch": ep, "train_loss": float(train_loss), "val_loss": v})
        if v is None:
            best = (np.inf, ep, state.params)
        elif v < best[0]:
            best = (v, ep, state.params)
        elif patience is not None and ep - best[1] >= patience:
            break
    return FitResult(best[2], best[1], history, time.perf_counter() - t0)


def _check_targets(y, n: int, loss: str, name: str) -> np.ndarray:
    y = validation.as_float_array(y, name).astype(np.float32)
    if y.shape != (n,) or not np.all(np.isfinite(y)):
        raise ValueError(f"{name} must be {n} finite targets of shape [N], got shape {y.shape}"
                         + ("" if y.shape != (n,) else " with NaN or infinity"))
    if loss == "bce" and not np.isin(y, (0, 1)).all():
        raise ValueError(f"{name} must hold labels 0 or 1 for loss='bce', got values {np.unique(y)[:5]}")
    return y


# ----------------------------------------------------------------------------- shapes


def centred_terms(terms_fn: Callable, grid, x_ref) -> np.ndarray:
    """Shape functions on `grid [G, F]` (column j holds the values of feature j), each
    minus its mean over the data `x_ref [N, F]` -> `[G, F]`.

    `terms_fn(x [B, F]) -> [B, F]` gives each feature's term (for the network:
    `lambda x: model.apply(params, x, terms=True)`). A shape function is only defined up to
    a constant (constants move freely between the terms and the bias); centring on the
    data makes `g_j = 0` mean "the average effect of feature j", comparable across models.
    """
    grid, x_ref = check_features(grid, name="grid"), check_features(x_ref, name="x_ref")
    values = np.asarray(terms_fn(jnp.asarray(grid, jnp.float32)))
    return values - np.asarray(terms_fn(jnp.asarray(x_ref, jnp.float32))).mean(axis=0)


def shapes_from_predict(predict: Callable, grid, x_ref, *, anchor=None) -> np.ndarray:
    """Centred shape functions `[G, F]` of any additive predictor `predict(x [B, F]) -> [B]`
    (a boosted-tree model, say), read off by moving one feature at a time.

    Feature j's curve is `predict(anchor with x_j = v) - mean_i predict(anchor with x_j =
    x_ref[i, j])`; `anchor [F]` defaults to the data median. For an additive predictor the
    result does not depend on the anchor (that is the test of additivity); otherwise it is
    an individual conditional expectation curve through the anchor.
    """
    grid, x_ref = check_features(grid, name="grid"), check_features(x_ref, grid.shape[1], name="x_ref")
    f = grid.shape[1]
    validation.check_callable(predict, "predict")
    anchor = np.median(x_ref, axis=0) if anchor is None else validation.as_float_array(anchor, "anchor").astype(float)
    if anchor.shape != (f,):
        raise ValueError(f"anchor must have shape [{f}], got {anchor.shape}")
    validation.check_finite(anchor, "anchor")

    def vary(values: np.ndarray) -> np.ndarray:  # values [K, F] -> predictions [K, F]
        rows = np.repeat(anchor[None, None, :], len(values), axis=0).repeat(f, axis=1)  # [K, F, F]
        rows[:, np.arange(f), np.arange(f)] = values
        return np.asarray(predict(rows.reshape(-1, f))).reshape(len(values), f)

    return vary(grid) - vary(x_ref).mean(axis=0)


# ----------------------------------------------------------------------------- tables


class Tables(NamedTuple):
    """One lookup table per feature: `values[j, k]` is `g_j` at `lo[j] + k * step[j]`."""

    lo: np.ndarray  # [F]
    step: np.ndarray  # [F]
    values: np.ndarray  # [F, G]
    bias: float

    @property
    def size(self) -> int:
        """Numbers stored (tables, grid ends and steps, bias)."""
        return int(self.values.size + self.lo.size + self.step.size + 1)


def to_tables(terms_fn: Callable, bias_value: float, lo, hi, *, points: int = 256) -> Tables:
    """Samples each shape function on `points` equally spaced values in `[lo_j, hi_j]`.

    `terms_fn(x [B, F]) -> [B, F]` as in `centred_terms`; `lo, hi [F]`: the range to cover
    (the training data's, say). Between grid points `table_predict` interpolates linearly,
    with an error of at most `step^2 / 8 * max|g_j''|` per feature; outside the range it
    holds the end value.
    """
    lo = validation.as_float_array(lo, "lo").astype(np.float64)
    hi = validation.as_float_array(hi, "hi").astype(np.float64)
    if lo.ndim != 1 or lo.shape != hi.shape or not np.all(hi > lo):
        raise ValueError(f"lo and hi must be vectors [F] with hi > lo, got {lo}, {hi}")
    validation.check_finite(lo, "lo")
    validation.check_finite(hi, "hi")
    validation.check_number(bias_value, "bias_value")
    validation.check_int(points, "points")
    if points < 2:
        raise ValueError(f"a table needs at least 2 points, got {points}")
    grid = lo + np.linspace(0.0, 1.0, points)[:, None] * (hi - lo)  # [G, F]
    values = np.asarray(terms_fn(jnp.asarray(grid, jnp.float32)), np.float32).T  # [F, G]
    if values.shape != (len(lo), points):
        raise ValueError(f"terms_fn returned shape {values.T.shape}, expected [{points}, {len(lo)}]")
    return Tables(lo, (hi - lo) / (points - 1), values, float(bias_value))


def table_terms(tables: Tables, x) -> np.ndarray:
    """Each feature's term `[B, F]` from the tables alone (numpy, linear interpolation;
    float32, in place: about ten passes over `x`, whatever the size of the network)."""
    f, g = tables.values.shape
    t = (check_features(x, f) - tables.lo) / tables.step  # [B, F] position on the grid
    t = np.clip(t, 0.0, g - 1, out=t).astype(np.float32)
    i = t.astype(np.int32)
    np.minimum(i, g - 2, out=i)
    t -= i  # the fraction of the way to the next grid point
    i += np.arange(f, dtype=np.int32) * g  # index into the flattened tables
    flat = tables.values.astype(np.float32).ravel()
    left, right = flat.take(i), flat.take(i + 1)
    right -= left
    right *= t
    right += left
    return right


def table_predict(tables: Tables, x) -> np.ndarray:
    """Predictions `[B]` from the tables alone: bias + sum of the interpolated terms."""
    return table_terms(tables, x).sum(axis=1) + tables.bias


# ----------------------------------------------------------------------------- toy problem


TOY_SHAPES: tuple[Callable[[np.ndarray], np.ndarray], ...] = (
    lambda v: 3.0 * v,
    lambda v: 2.0 * v**2,
    lambda v: v**3,
)
"""The true shape functions of the toy problem y = 3 x1 + 2 x2^2 + x3^3 + noise."""
TOY_FORMULAS = ("3 x1", "2 x2²", "x3³")


def toy_terms(x) -> np.ndarray:
    """The true terms `[N, 3]` of the toy problem at `x [N, 3]`."""
    x = check_features(x, len(TOY_SHAPES))
    return np.stack([g(x[:, j]) for j, g in enumerate(TOY_SHAPES)], axis=1)


def toy_data(n: int = 1000, *, seed: int = 0, noise: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """`x [n, 3] ~ N(0, 1)` and `y [n] = 3 x1 + 2 x2^2 + x3^3 + N(0, noise^2)`."""
    validation.check_int(n, "n", minimum=1)
    validation.check_int(seed, "seed")
    validation.check_number(noise, "noise", nonnegative=True)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, len(TOY_SHAPES)))
    return x, toy_terms(x).sum(axis=1) + noise * rng.standard_normal(n)
