"""Gradient-based attribution methods, model-agnostic.

Shape glossary: B batch, L padded length, A = 21 channels, K points on a path (IG),
N noise samples (SmoothGrad), n residues of one peptide.

Every method takes a predict function `f(x[B, L, A]) -> logits[B]` (any JAX model whose
batch items are independent of each other) and one input `x[L, A]`, and returns
attributions `[L, A]` for the logit. `per_residue` reduces them to one score per residue.
Bad input (wrong shape, NaN, a baseline of another shape, steps < 1) raises `ValueError`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from helpers.sequences import NUM_CHANNELS

PredictFn = Callable[[jax.Array], jax.Array]  # x[B, L, A] -> logits[B]
RULES = ("left", "right", "midpoint", "trapezoid")
BASELINES = ("zero", "padding", "mean", "uniform")


# ----------------------------------------------------------------------------- checks


def _as_input(x, name: str = "x") -> jax.Array:
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[-1] != NUM_CHANNELS:
        raise ValueError(f"{name} must have shape [L, {NUM_CHANNELS}], got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return jnp.asarray(arr)


def _as_baseline(baseline, x: jax.Array) -> jax.Array:
    if baseline is None:
        return jnp.zeros_like(x)
    b = _as_input(baseline, "baseline")
    if b.shape != x.shape:
        raise ValueError(f"baseline has shape {b.shape} but x has shape {x.shape}; they must match")
    return b


# ----------------------------------------------------------------------------- gradients


@functools.lru_cache(maxsize=64)
def _batched_grad(f: PredictFn) -> Callable[[jax.Array], jax.Array]:
    """Jitted per-example input gradients `[B, L, A] -> [B, L, A]` of f's logits.

    The gradient of the *sum* of the logits is the per-example gradient because batch
    items are independent; one backward pass serves the whole batch.
    """
    return jax.jit(jax.grad(lambda xb: f(xb).sum()))


def gradients(f: PredictFn, xs, *, batch_size: int = 256) -> jax.Array:
    """Input gradients of the logits for a batch: `xs [B, L, A] -> [B, L, A]`, computed
    `batch_size` examples at a time (one backward pass per chunk)."""
    xs = np.asarray(xs, dtype=np.float32)
    if xs.ndim != 3 or xs.shape[-1] != NUM_CHANNELS:
        raise ValueError(f"xs must have shape [B, L, {NUM_CHANNELS}], got {xs.shape}")
    if not np.isfinite(xs).all():
        raise ValueError("xs contains NaN or infinite values")
    return _chunked_grads(f, jnp.asarray(xs), batch_size)


def saliency(f: PredictFn, x) -> jax.Array:
    """The gradient of the logit with respect to the input, `[L, A]` (signed; Captum's
    `Saliency` takes its absolute value by default)."""
    x = _as_input(x)
    return _batched_grad(f)(x[None])[0]


def gradient_x_input(f: PredictFn, x) -> jax.Array:
    """Gradient times input, `[L, A]`: IG with a zero baseline and a single step."""
    return _as_input(x) * saliency(f, x)


def _chunked_grads(f: PredictFn, points: jax.Array, batch_size: int) -> jax.Array:
    """Gradients at `points [K, L, A]` in chunks of `batch_size` (the last chunk is padded so
    that one compiled shape serves every chunk)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    g = _batched_grad(f)
    k = points.shape[0]
    size = min(batch_size, k)
    out = []
    for start in range(0, k, size):
        chunk = points[start : start + size]
        pad = size - chunk.shape[0]
        if pad:
            chunk = jnp.concatenate([chunk, jnp.repeat(chunk[-1:], pad, axis=0)])
        out.append(g(chunk)[: size - pad])
    return jnp.concatenate(out)


# ----------------------------------------------------------------------------- IG


def path_rule(steps: int, rule: str = "trapezoid") -> tuple[np.ndarray, np.ndarray]:
    """Points `alpha [K]` in [0, 1] and weights `[K]` (summing to 1) of a quadrature rule
    for the path integral of IG. `left`, `right`, `midpoint` use K = steps points,
    `trapezoid` uses steps + 1 (both end points, each with half weight)."""
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; use one of {RULES}")
    k = np.arange(steps, dtype=np.float64)
    if rule == "left":
        alphas, weights = k / steps, np.full(steps, 1.0 / steps)
    elif rule == "right":
        alphas, weights = (k + 1) / steps, np.full(steps, 1.0 / steps)
    elif rule == "midpoint":
        alphas, weights = (k + 0.5) / steps, np.full(steps, 1.0 / steps)
    else:
        alphas = np.arange(steps + 1, dtype=np.float64) / steps
        weights = np.full(steps + 1, 1.0 / steps)
        weights[[0, -1]] /= 2
    return alphas.astype(np.float32), weights.astype(np.float32)


class IGResult(NamedTuple):
    attributions: jax.Array  # [L, A]
    gap: float  # completeness gap: sum(attributions) - (f(x) - f(baseline))
    f_x: float
    f_baseline: float


def integrated_gradients(
    f: PredictFn,
    x,
    baseline=None,
    *,
    steps: int = 64,
    rule: str = "trapezoid",
    batch_size: int = 256,
) -> IGResult:
    """Integrated gradients (Sundararajan et al. 2017) along the straight path from
    `baseline [L, A]` (default: all zeros) to `x [L, A]`.

    `rule` picks the quadrature (`left`, `right`, `midpoint`, `trapezoid`); model calls are
    batched `batch_size` path points at a time, which bounds memory. Returns the
    attributions and the completeness gap `sum(attr) - (f(x) - f(baseline))`, which is 0 for
    the exact integral: check it, and add steps when it is large.
    """
    x = _as_input(x)
    b = _as_baseline(baseline, x)
    alphas, weights = path_rule(steps, rule)
    points = b[None] + jnp.asarray(alphas)[:, None, None] * (x - b)[None]
    grads = _chunked_grads(f, points, batch_size)
    avg = jnp.tensordot(jnp.asarray(weights), grads, axes=1)
    attr = (x - b) * avg
    fx, fb = (float(v) for v in f(jnp.stack([x, b])))
    return IGResult(attr, float(attr.sum()) - (fx - fb), fx, fb)


def make_baseline(kind: str, x, *, train_x=None) -> jax.Array:
    """A baseline `[L, A]` for peptide `x [L, A]`.

    - `zero`: all zeros, a root of the course's CNN (logit exactly 0).
    - `padding`: every position is padding (channel 0 set); also a root of the CNN.
    - `mean`: the training-set mean of the one-hot arrays (`train_x [N, L, A]` required).
    - `uniform`: on the peptide's residues, 1/20 on each amino-acid channel; padding
      positions stay padding, so only the residues are attributed.
    """
    x = _as_input(x)
    if kind == "zero":
        return jnp.zeros_like(x)
    if kind == "padding":
        return jnp.zeros_like(x).at[:, 0].set(1.0)
    if kind == "mean":
        if train_x is None:
            raise ValueError("the 'mean' baseline needs train_x [N, L, 21]")
        tx = np.asarray(train_x)
        if tx.ndim != 3 or tx.shape[1:] != x.shape:
            raise ValueError(f"train_x must have shape [N, {x.shape[0]}, {x.shape[1]}], got {tx.shape}")
        return jnp.asarray(tx.mean(axis=0), dtype=jnp.float32)
    if kind == "uniform":
        residue = x[:, 1:].sum(axis=1, keepdims=True)  # [L, 1]: 1 on residues
        return jnp.concatenate([1.0 - residue, jnp.broadcast_to(residue / 20.0, (x.shape[0], 20))], 1)
    raise ValueError(f"unknown baseline {kind!r}; use one of {BASELINES}")


# ----------------------------------------------------------------------------- reducers


def num_residues(x) -> int:
    """The number of residues n of one peptide `x [L, A]`, checked: at least one residue,
    and all residues before the padding (positions holding amino-acid mass, as in
    `sequences.lengths`)."""
    residue = np.asarray(x)[:, 1:].sum(axis=-1) > 0
    n = int(residue.sum())
    if n == 0:
        raise ValueError("x holds no residue (all padding): there is nothing to explain")
    if not residue[:n].all():
        raise ValueError("x must be a one-hot peptide with its residues before the padding")
    return n


def per_residue(attributions, x, *, how: str = "own") -> np.ndarray:
    """One score per residue `[n]` from attributions `[L, A]` of peptide `x [L, A]`.

    `own` (default): the value on the residue's own one-hot channel. `sum`: the sum over
    all channels at that position (keeps completeness when the baseline is not zero on
    the other channels). Padding positions are excluded.
    """
    a = np.asarray(attributions)
    xa = np.asarray(x)
    if a.shape != xa.shape or a.ndim != 2 or a.shape[-1] != NUM_CHANNELS:
        raise ValueError(f"attributions {a.shape} and x {xa.shape} must both be [L, {NUM_CHANNELS}]")
    idx = xa.argmax(axis=-1)
    n = num_residues(xa)
    if not (idx[:n] > 0).all():
        raise ValueError("x must be a one-hot peptide with its residues before the padding")
    if how == "own":
        return a[np.arange(n), idx[:n]]
    if how == "sum":
        return a[:n].sum(axis=-1)
    raise ValueError(f"unknown reduction {how!r}; use 'own' or 'sum'")


# ----------------------------------------------------------------------------- SmoothGrad


def residue_mask(x) -> jax.Array:
    """`[L, 1]` float: 1 at positions holding any amino-acid mass, 0 at pure padding."""
    x = _as_input(x)
    return (x[:, 1:].sum(axis=-1, keepdims=True) > 0).astype(x.dtype)


def project_to_simplex_rows(x: jax.Array) -> jax.Array:
    """Clip at 0 and renormalise each position `[..., L, A]` to sum to 1: noisy inputs stay
    mixtures of amino acids (and padding), the domain the one-hot encoding lives on. A row
    clipped to all zeros becomes uniform over the 21 channels."""
    x = jnp.clip(x, 0.0, None)
    s = x.sum(axis=-1, keepdims=True)
    return jnp.where(s > 0, x / jnp.where(s > 0, s, 1.0), 1.0 / x.shape[-1])


SMOOTHED = ("gradient", "gradient_x_input", "integrated_gradients")


def smoothgrad(
    f: PredictFn,
    x,
    key: jax.Array,
    *,
    n: int = 50,
    sigma: float = 0.15,
    method: str = "gradient",
    project: bool = True,
    perturb_padding: bool = False,
    baseline=None,
    steps: int = 32,
    batch_size: int = 256,
) -> jax.Array:
    """SmoothGrad (Smilkov et al. 2017): the mean of an attribution over `n` noisy copies
    `x + eps`, `eps ~ N(0, (sigma * (max(x) - min(x)))^2)`, returns `[L, A]`.

    `sigma` is relative to the input range (1 for one-hot input), as in the paper and PAIR
    saliency; with `project=True` each noisy position is clipped and renormalised onto the
    probability simplex of the encoding. Padding positions are left alone unless
    `perturb_padding=True`: noise there would turn padding into fractional residues and
    change the peptide's length, not its residues. `method` is what gets smoothed: `gradient`,
    `gradient_x_input` (of the noisy input) or `integrated_gradients` (from `baseline`,
    trapezoid rule with `steps`). Signed: PAIR's default smooths squared gradients instead.
    """
    x = _as_input(x)
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if not np.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}")
    if method not in SMOOTHED:
        raise ValueError(f"unknown method {method!r}; use one of {SMOOTHED}")
    scale = sigma * float(x.max() - x.min())
    where = jnp.ones_like(x[:, :1]) if perturb_padding else residue_mask(x)
    noisy = x[None] + scale * where * jax.random.normal(key, (n, *x.shape), dtype=x.dtype)
    if project:
        noisy = project_to_simplex_rows(noisy)
    if method == "integrated_gradients":
        total = jnp.zeros_like(x)
        for xi in noisy:
            total = total + integrated_gradients(
                f, xi, baseline, steps=steps, rule="trapezoid", batch_size=batch_size
            ).attributions
        return total / n
    grads = _chunked_grads(f, noisy, batch_size)
    if method == "gradient_x_input":
        grads = grads * noisy
    return grads.mean(axis=0)


# ----------------------------------------------------------------------------- DeepLIFT


def rescale_activation(act: Callable[[jax.Array], jax.Array], *, eps: float = 1e-6):
    """`act` with the DeepLIFT rescale rule as its gradient, for a *paired* batch.

    The batch `[2B, ...]` holds the inputs in its first half and their references in the
    second. The forward pass is `act`. The backward pass multiplies the incoming gradient
    by the secant `(act(z) - act(z0)) / (z - z0)` of each unit between input and
    reference (the same multiplier on both halves), falling back to `act'(z)` where
    `|z - z0| < eps`.
    """

    @jax.custom_vjp
    def paired(z):
        return act(z)

    def fwd(z):
        y = act(z)
        return y, (z, y)

    def bwd(res, g):
        z, y = res
        if z.shape[0] % 2:
            raise ValueError("the DeepLIFT activation needs a batch of inputs then references")
        half = z.shape[0] // 2
        dz = z[:half] - z[half:]
        dy = y[:half] - y[half:]
        slope = jax.jvp(act, (z[:half],), (jnp.ones_like(dz),))[1]
        small = jnp.abs(dz) < eps
        m = jnp.where(small, slope, dy / jnp.where(small, 1.0, dz))
        return (g * jnp.concatenate([m, m]),)

    paired.defvjp(fwd, bwd)
    return paired


class DeepLiftResult(NamedTuple):
    attributions: jax.Array  # [L, A]
    gap: float  # summation-to-delta gap: sum(attributions) - (f(x) - f(baseline))
    f_x: float
    f_baseline: float


def make_deeplift(
    make_f: Callable[[Callable], PredictFn],
    *,
    activation: Callable[[jax.Array], jax.Array] = jnp.tanh,
    eps: float = 1e-6,
) -> Callable[..., DeepLiftResult]:
    """A reusable, compiled DeepLIFT explainer `explain(x[L, A], baseline=None)`.

    `make_f(activation)` must return the model's predict function `f(x[B, L, A]) ->
    logits[B]` built with the given activation in place of `activation` (for the course's
    CNN: `lambda act: cnn.predict_fn(params, activation=act)`). Building the model with the
    rescale activation and compiling it happens once, here, not per explanation.
    """
    f_dl = make_f(rescale_activation(activation, eps=eps))

    @jax.jit
    def _explain(x, b):
        # The rescale activation's forward pass is `activation`, so one forward pass gives
        # f(x) and f(baseline), and the pullback of the first output gives the multipliers.
        out, pullback = jax.vjp(f_dl, jnp.stack([x, b]))
        mult = pullback(jnp.array([1.0, 0.0], out.dtype))[0][0]
        return (x - b) * mult, out

    def explain(x, baseline=None) -> DeepLiftResult:
        x = _as_input(x)
        b = _as_baseline(baseline, x)
        attr, out = _explain(x, b)
        fx, fb = float(out[0]), float(out[1])
        return DeepLiftResult(attr, float(attr.sum()) - (fx - fb), fx, fb)

    return explain


def deeplift(
    make_f: Callable[[Callable], PredictFn],
    x,
    baseline=None,
    *,
    activation: Callable[[jax.Array], jax.Array] = jnp.tanh,
    eps: float = 1e-6,
) -> DeepLiftResult:
    """DeepLIFT with the rescale rule (Shrikumar et al. 2017), done the JAX way.

    One backward pass through the paired batch `[x, baseline]` with secant multipliers at
    every activation (`rescale_activation`) gives the attributions `(x - baseline) *
    multipliers`. Summation to delta is exact for networks of linear layers and elementwise
    activations; the returned gap measures how far other layers (max-pooling,
    multiplicative masks, divisions) break it. For many explanations, build the explainer
    once with `make_deeplift` (this function compiles the model on every call).
    """
    return make_deeplift(make_f, activation=activation, eps=eps)(x, baseline)
