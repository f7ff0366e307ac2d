"""Gradient-based attribution methods, model-agnostic.

Shape glossary: B batch, L padded length, A = 21 channels, K points on a path (IG),
N noise samples (SmoothGrad), n residues of one peptide.

Every method takes a predict function `f(x[B, L, A]) -> logits[B]` (any JAX model whose
batch items are independent of each other) and one input `x[L, A]`, and returns
attributions `[L, A]` for the logit. `per_residue` reduces them to one score per residue.
Bad input (wrong shape, NaN, a baseline of another shape, steps < 1) raises `ValueError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from helpers import jitting, validation
from helpers.sequences import NUM_CHANNELS

PredictFn = Callable[[jax.Array], jax.Array]  # x[B, L, A] -> logits[B]
RULES = ("left", "right", "midpoint", "trapezoid")
BASELINES = ("zero", "padding", "mean", "uniform")


# ----------------------------------------------------------------------------- checks


def _as_input(x, name: str = "x") -> jax.Array:
    arr = validation.as_float_array(x, name).astype(np.float32)
    if arr.ndim != 2 or arr.shape[-1] != NUM_CHANNELS or arr.shape[0] == 0:
        raise ValueError(f"{name} must have shape [L, {NUM_CHANNELS}] with L >= 1, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return jnp.asarray(arr)


def _as_baseline(baseline, x: jax.Array) -> jax.Array:
    if baseline is None:
        return jnp.zeros_like(x)
    if isinstance(baseline, str):  # the shared vocabulary (validation.BASELINE_NAMES)
        return make_baseline(validation.baseline_name(baseline, allowed=("zeros", "padding", "uniform")), x)
    b = _as_input(baseline, "baseline")
    if b.shape != x.shape:
        raise ValueError(f"baseline has shape {b.shape} but x has shape {x.shape}; they must match")
    return b


# ----------------------------------------------------------------------------- gradients


def _grad_of_sum(f: PredictFn, xb: jax.Array) -> jax.Array:
    return jax.grad(lambda z: f(z).sum())(xb)


_compiled_grad = jitting.per_model(_grad_of_sum)


def _batched_grad(f: PredictFn) -> Callable[[jax.Array], jax.Array]:
    """Jitted per-example input gradients `[B, L, A] -> [B, L, A]` of f's logits (compiled
    once per architecture for `helpers.model.predict_fn`'s functions: `helpers.jitting`).

    The gradient of the *sum* of the logits is the per-example gradient because batch
    items are independent; one backward pass serves the whole batch.
    """
    return _compiled_grad(f)


def gradients(f: PredictFn, xs, *, batch_size: int = 256) -> jax.Array:
    """Input gradients of the logits for a batch: `xs [B, L, A] -> [B, L, A]`, computed
    `batch_size` examples at a time (one backward pass per chunk)."""
    xs = validation.as_float_array(xs, "xs").astype(np.float32)
    if xs.ndim != 3 or xs.shape[-1] != NUM_CHANNELS:
        raise ValueError(f"xs must have shape [B, L, {NUM_CHANNELS}], got {xs.shape}")
    if not np.isfinite(xs).all():
        raise ValueError("xs contains NaN or infinite values")
    validation.check_int(batch_size, "batch_size", minimum=1)
    if len(xs) == 0:
        return jnp.zeros_like(xs)
    validation.model_outputs(f, jnp.asarray(xs[:2]))
    return _chunked_grads(f, jnp.asarray(xs), batch_size)


def saliency(f: PredictFn, x) -> jax.Array:
    """The gradient of the logit with respect to the input, `[L, A]` (signed; Captum's
    `Saliency` takes its absolute value by default)."""
    x = _as_input(x)
    validation.model_outputs(f, jnp.stack([x, x]))  # the output contract, once per call
    return _batched_grad(f)(x[None])[0]


def gradient_x_input(f: PredictFn, x) -> jax.Array:
    """Gradient times input, `[L, A]`: IG with a zero baseline and a single step."""
    return _as_input(x) * saliency(f, x)


def _chunked_grads(f: PredictFn, points: jax.Array, batch_size: int) -> jax.Array:
    """Gradients at `points [K, L, A]` in chunks of `batch_size` (the last chunk is padded so
    that one compiled shape serves every chunk)."""
    validation.check_int(batch_size, "batch_size", minimum=1)
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

    `baseline` may also be a name of the shared vocabulary (`validation.BASELINE_NAMES`):
    `"zeros"` (`"zero"`), `"padding"` or `"uniform"` (see `make_baseline`).
    `rule` picks the quadrature (`left`, `right`, `midpoint`, `trapezoid`); model calls are
    batched `batch_size` path points at a time, which bounds memory. Returns the
    attributions and the completeness gap `sum(attr) - (f(x) - f(baseline))`, which is 0 for
    the exact integral: check it, and add steps when it is large.
    """
    x = _as_input(x)
    b = _as_baseline(baseline, x)
    alphas, weights = path_rule(steps, rule)
    fx, fb = (float(v) for v in validation.model_outputs(f, jnp.stack([x, b])))
    points = b[None] + jnp.asarray(alphas)[:, None, None] * (x - b)[None]
    grads = _chunked_grads(f, points, batch_size)
    avg = jnp.tensordot(jnp.asarray(weights), grads, axes=1)
    attr = (x - b) * avg
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
    if not isinstance(kind, str):
        raise TypeError(f"kind must be a baseline name, one of {BASELINES}, got {type(kind).__name__}")
    kind = {"zeros": "zero", "delete": "deletion"}.get(kind, kind)  # one vocabulary (validation)
    if kind == "zero":
        return jnp.zeros_like(x)
    if kind == "padding":
        return jnp.zeros_like(x).at[:, 0].set(1.0)
    if kind == "mean":
        if train_x is None:
            raise ValueError("the 'mean' baseline needs train_x [N, L, 21]")
        tx = validation.as_float_array(train_x, "train_x")
        if tx.ndim != 3 or tx.shape[1:] != x.shape or len(tx) == 0:
            raise ValueError(f"train_x must have shape [N >= 1, {x.shape[0]}, {x.shape[1]}], got {tx.shape}")
        validation.check_finite(tx, "train_x")
        return jnp.asarray(tx.mean(axis=0), dtype=jnp.float32)
    if kind == "uniform":
        residue = x[:, 1:].sum(axis=1, keepdims=True)  # [L, 1]: 1 on residues
        return jnp.concatenate([1.0 - residue, jnp.broadcast_to(residue / 20.0, (x.shape[0], 20))], 1)
    if kind == "deletion":
        raise ValueError("kind='delete' splices residues out (a perturbation of the games, not a point to "
                         f"interpolate from); use one of {BASELINES}")
    raise ValueError(f"unknown baseline kind {kind!r}; use one of {BASELINES}")


class EGResult(NamedTuple):
    attributions: jax.Array  # [L, A]
    gap: float  # sum(attributions) - (f(x) - mean f(reference)): zero in expectation
    f_x: float
    f_references: float  # mean of f over all the references
    sum_se: float  # Monte Carlo standard error of sum(attributions)


def expected_gradients(
    f: PredictFn, x, references, key: jax.Array, *, samples: int = 256, batch_size: int = 256
) -> EGResult:
    """Expected gradients (Erion et al. 2021): IG averaged over references drawn from a data
    set, estimated with one random point per draw.

    Each of `samples` draws picks a reference `r` uniformly from `references [M, L, A]` and
    `alpha ~ U(0, 1)`, and contributes `(x - r) * grad f(r + alpha (x - r))`; the attributions
    are the mean. Their expectation is the mean of exact IG over the references, so their
    sum equals `f(x) - mean f(references)` up to Monte Carlo error: `gap` is that difference
    and `sum_se` the standard error of the sum (compare the two).
    """
    x = _as_input(x)
    validation.check_key(key)
    refs = validation.as_float_array(references, "references").astype(np.float32)
    if refs.ndim != 3 or refs.shape[1:] != x.shape or len(refs) == 0:
        raise ValueError(f"references must have shape [M >= 1, {x.shape[0]}, {x.shape[1]}], got {refs.shape}")
    if not np.isfinite(refs).all():
        raise ValueError("references contain NaN or infinite values")
    if not isinstance(samples, (int, np.integer)) or isinstance(samples, bool) or samples < 2:
        raise ValueError(f"samples must be an integer >= 2 (the standard error needs two), got {samples!r}")
    validation.check_int(batch_size, "batch_size", minimum=1)
    fx = float(validation.model_outputs(f, x[None])[0])
    fr = float(np.mean(np.concatenate(
        [validation.model_outputs(f, jnp.asarray(refs[i : i + batch_size])) for i in range(0, len(refs), batch_size)])))
    k_ref, k_alpha = jax.random.split(key)
    refs = jnp.asarray(refs)
    drawn = refs[jax.random.randint(k_ref, (samples,), 0, refs.shape[0])]  # [S, L, A]
    alphas = jax.random.uniform(k_alpha, (samples,), dtype=x.dtype)
    points = drawn + alphas[:, None, None] * (x[None] - drawn)
    each = (x[None] - drawn) * _chunked_grads(f, points, batch_size)  # [S, L, A]
    attr = each.mean(axis=0)
    sums = np.asarray(each.sum(axis=(1, 2)), dtype=np.float64)
    return EGResult(attr, float(attr.sum()) - (fx - fr), fx, fr, float(sums.std(ddof=1) / np.sqrt(samples)))


# ----------------------------------------------------------------------------- reducers


def num_residues(x) -> int:
    """The number of residues n of one peptide `x [L, A]`, checked: at least one residue,
    and all residues before the padding (positions holding amino-acid mass, as in
    `sequences.lengths`)."""
    xa = validation.as_float_array(x, "x")
    if xa.ndim != 2 or xa.shape[-1] != NUM_CHANNELS:
        raise ValueError(f"x must have shape [L, {NUM_CHANNELS}], got {xa.shape}")
    residue = xa[:, 1:].sum(axis=-1) > 0
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
    validation.check_finite(a, "attributions")
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
    validation.check_key(key)
    validation.check_int(n, "n", minimum=1)
    validation.check_number(sigma, "sigma", nonnegative=True)
    if method not in SMOOTHED:
        raise ValueError(f"unknown method {method!r}; use one of {SMOOTHED}")
    validation.check_int(batch_size, "batch_size", minimum=1)
    if method != "integrated_gradients":  # (IG checks the model itself)
        validation.model_outputs(f, jnp.stack([x, x]))
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


# DeepLIFT, DeepSHAP and the traced DeepLIFT live in `helpers.deeplift` (one module per method
# family); their old names here still resolve, lazily, so `attribution.deeplift` keeps working.
_MOVED_TO_DEEPLIFT = frozenset(('rescale_activation', 'DeepLiftResult', 'make_deeplift', 'deeplift', 'deepshap', 'SECANT_PRIMITIVES', 'DeepLiftTraced', 'paired_product', 'LINEAR_PRIMITIVES', 'deeplift_traced'))


def __getattr__(name: str):
    if name in _MOVED_TO_DEEPLIFT:
        from helpers import deeplift

        return getattr(deeplift, name)
    raise AttributeError(f"module 'helpers.attribution' has no attribute {name!r}")
