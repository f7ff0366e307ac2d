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
from jax.extend import core as jex_core

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


# ----------------------------------------------------------------------------- DeepLIFT


@functools.lru_cache(maxsize=32)
def rescale_activation(act: Callable[[jax.Array], jax.Array], *, eps: float = 1e-6):
    """`act` with the DeepLIFT rescale rule as its gradient, for a *paired* batch.

    The batch `[2B, ...]` holds the inputs in its first half and their references in the
    second. The forward pass is `act`. The backward pass multiplies the incoming gradient
    by the secant `(act(z) - act(z0)) / (z - z0)` of each unit between input and
    reference (the same multiplier on both halves), falling back to `act'(z)` where
    `|z - z0| < eps`. The same `act` and `eps` return the same function (cached), so models
    built with it share compiled code. `eps` must be > 0 (with 0, a unit whose input does
    not change would divide 0 by 0).
    """
    validation.check_callable(act, "act")
    validation.check_number(eps, "eps", positive=True)

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
        # act'(z) on the whole pair, then the inputs' half: act may close over arrays that
        # carry the paired batch (deeplift_traced passes such operands of a primitive).
        slope = jax.jvp(act, (z,), (jnp.ones_like(z),))[1][:half]
        small = jnp.abs(dz) < eps
        m = jnp.where(small, slope, dy / jnp.where(small, 1.0, dz))
        return (g * jnp.concatenate([m, m]),)

    paired.defvjp(fwd, bwd)
    return paired


def _deeplift_pass(f_dl: PredictFn, x: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
    # The rescale activation's forward pass is `activation`, so one forward pass gives
    # f(x) and f(baseline), and the pullback of the first output gives the multipliers.
    out, pullback = jax.vjp(f_dl, jnp.stack([x, b]))
    mult = pullback(jnp.array([1.0, 0.0], out.dtype))[0][0]
    return (x - b) * mult, out


_compiled_deeplift = jitting.per_model(_deeplift_pass)


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
    # The same (activation, eps) gives the same rescale function, so that `make_f` builds the
    # same architecture each time and the pass below compiles once per architecture.
    validation.check_callable(make_f, "make_f")
    validation.check_callable(activation, "activation")
    f_dl = make_f(rescale_activation(activation, eps=eps))
    validation.check_callable(f_dl, "make_f(activation)")
    _explain = _compiled_deeplift(f_dl)
    checked: set = set()  # input shapes whose factory and output contract were verified

    def explain(x, baseline=None) -> DeepLiftResult:
        x = _as_input(x)
        b = _as_baseline(baseline, x)
        if x.shape not in checked:  # once per shape, by tracing only (nothing is computed)
            _check_factory(make_f, activation, x.shape)
            validation.output_struct(f_dl, x.shape, name="make_f(activation)")
            checked.add(x.shape)
        attr, out = _explain(x, b)
        fx, fb = validation.check_logits(out, 2, name="make_f(activation)")
        return DeepLiftResult(attr, float(attr.sum()) - (fx - fb), fx, fb)

    return explain


def _nonlinear_ops(jaxpr, found: set | None = None) -> set:
    """Names of the elementwise nonlinearities (`SECANT_PRIMITIVES`) anywhere in a jaxpr."""
    found = set() if found is None else found
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in SECANT_PRIMITIVES:
            found.add(eqn.primitive.name)
        for v in eqn.params.values():
            for sub in v if isinstance(v, (tuple, list)) else (v,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    _nonlinear_ops(inner, found)
    return found


def _check_factory(make_f, activation, shape: tuple) -> None:
    """DeepLIFT must not silently explain another model: if `make_f` ignores the activation
    it is given, the model it builds may have no nonlinearity at all (a linear model, where
    DeepLIFT needs no rescale rule and is exact), else refuse."""
    used, closed = validation.factory_uses(make_f, activation, shape)
    ops = set() if used else _nonlinear_ops(closed.jaxpr)
    if ops:
        raise ValueError(
            f"make_f ignored its activation argument, and the model it returns has nonlinear "
            f"operations ({', '.join(sorted(ops))}) that the rescale rule would not reach: DeepLIFT would "
            f"silently explain it by its gradients. make_f must build the model with the activation it "
            f"receives, e.g. `lambda act: cnn.predict_fn(params, activation=act)` (deeplift_traced needs no factory)"
        )


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


def deepshap(explain: Callable[..., DeepLiftResult], x, references) -> DeepLiftResult:
    """DeepSHAP (Lundberg & Lee 2017): DeepLIFT averaged over a background of references.

    `explain(x, reference) -> DeepLiftResult` is an explainer from `make_deeplift` (or any
    function with that signature); `references [M, L, A]`. Returns the mean attributions, and
    as `f_baseline` the mean of f over the references, so that summation to delta reads
    `sum(attributions) = f(x) - mean f(reference)`; `gap` is the mean of the per-reference gaps.
    """
    validation.check_callable(explain, "explain")
    x = _as_input(x)
    refs = validation.as_float_array(references, "references").astype(np.float32)
    if refs.ndim != 3 or refs.shape[1:] != x.shape or len(refs) == 0:
        raise ValueError(f"references must have shape [M >= 1, {x.shape[0]}, {x.shape[1]}], got {refs.shape}")
    validation.check_finite(refs, "references")
    results = [explain(x, r) for r in refs]
    attr = jnp.mean(jnp.stack([r.attributions for r in results]), axis=0)
    fb = float(np.mean([r.f_baseline for r in results]))
    return DeepLiftResult(attr, float(np.mean([r.gap for r in results])), results[0].f_x, fb)


# ----------------------------------------------------------------------------- DeepLIFT, traced

# Elementwise primitives whose rescale (secant) rule is exact: one input-dependent operand,
# every other operand a constant (the exponent of a power, the 0 of a ReLU's max).
SECANT_PRIMITIVES = frozenset(
    "tanh logistic exp exp2 log log1p expm1 sin cos tan atan sinh cosh asinh sqrt rsqrt cbrt "
    "integer_pow pow abs erf erfc square max min".split()
)


class DeepLiftTraced(NamedTuple):
    attributions: jax.Array  # the input's shape
    gap: float  # sum(attributions) - (f(x) - f(baseline))
    f_x: float
    f_baseline: float
    by_operation: dict  # primitive name -> its share of the gap (the shares sum to `gap`)
    sites: tuple  # (primitive, output shape, share of the gap), one per operation without a rule


def _pair_mean(v: jax.Array) -> jax.Array:
    half = v.shape[0] // 2
    m = 0.5 * (v[:half] + v[half:])
    return jnp.concatenate([m, m])


@jax.custom_vjp
def paired_product(a: jax.Array, b: jax.Array) -> jax.Array:
    """`a * b` on a paired batch (inputs, then references) with DeepLIFT's exact product rule
    as its gradient: the multipliers are the pair means, `d/da = (b + b') / 2` and
    `d/db = (a + a') / 2`, because `ab - a'b' = (b + b')/2 (a - a') + (a + a')/2 (b - b')`."""
    return a * b


def _product_fwd(a, b):
    return a * b, (a, b)


def _unbroadcast(g: jax.Array, shape: tuple) -> jax.Array:
    """Sums `g` over the axes that broadcasting stretched from `shape` (same rank)."""
    axes = tuple(i for i, (n, m) in enumerate(zip(shape, g.shape)) if n == 1 and m != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def _product_bwd(res, g):
    a, b = res
    return _unbroadcast(g * _pair_mean(b), a.shape), _unbroadcast(g * _pair_mean(a), b.shape)


paired_product.defvjp(_product_fwd, _product_bwd)


def _closed_subjaxpr(params):
    for key in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
        sub = params.get(key)
        if sub is not None and hasattr(sub, "consts") and hasattr(sub, "jaxpr"):
            return sub
    return None


def _is_float(v) -> bool:
    return jnp.issubdtype(jnp.result_type(v), jnp.floating)


def _delta(v: jax.Array) -> jax.Array:
    """The paired tangent `[v - v', v - v']` of a paired value `[v, v']`."""
    half = v.shape[0] // 2
    d = v[:half] - v[half:]
    return jnp.concatenate([d, d])


# Primitives that are linear in their input-dependent operands (finite differences pass
# through them exactly, so they need no probe). mul, div, dot_general and conv are linear only
# when a single operand depends on the input (for div: the numerator).
LINEAR_PRIMITIVES = frozenset(
    "add sub neg add_any reduce_sum reduce_window_sum cumsum pad broadcast_in_dim reshape squeeze "
    "expand_dims slice dynamic_slice concatenate transpose rev copy copy_p convert_element_type "
    "real imag".split()
)


def _is_linear(name: str, ds) -> bool:
    if name in LINEAR_PRIMITIVES:
        return True
    if name in ("mul", "dot_general", "conv_general_dilated"):
        return sum(map(bool, ds[:2])) == 1
    return name == "div" and ds[0] and not ds[1]


class _Tracer:
    """Evaluates a jaxpr on a paired batch with DeepLIFT rules (see `deeplift_traced`)."""

    def __init__(self, batch: int, product_rule: bool, eps: float, probes):
        self.batch, self.product_rule, self.eps = batch, product_rule, eps
        self.probes = None if probes is None else list(probes)
        self.sites: list = []  # (name, shape, dtype) in evaluation order
        self.defects: list = []

    def run(self, closed, args, deps):
        jaxpr = closed.jaxpr
        env, dep = {}, {}
        for v, c in zip(jaxpr.constvars, closed.consts):
            env[v], dep[v] = c, False
        for v, a, d in zip(jaxpr.invars, args, deps):
            env[v], dep[v] = a, d

        def read(v):
            return (v.val, False) if isinstance(v, jex_core.Literal) else (env[v], dep[v])

        for eqn in jaxpr.eqns:
            vals, ds = zip(*(read(v) for v in eqn.invars)) if eqn.invars else ((), ())
            outs = self.apply(eqn, list(vals), list(ds))
            any_dep = any(ds)
            for v, o in zip(eqn.outvars, outs):
                env[v], dep[v] = o, any_dep
        return [read(v)[0] for v in jaxpr.outvars], [read(v)[1] for v in jaxpr.outvars]

    def bind(self, eqn, vals):
        out = eqn.primitive.bind(*vals, **eqn.params)
        return list(out) if eqn.primitive.multiple_results else [out]

    def apply(self, eqn, vals, ds):
        name = eqn.primitive.name
        if not any(ds):
            return self.bind(eqn, vals)
        sub = _closed_subjaxpr(eqn.params)
        if sub is not None and len(sub.jaxpr.invars) == len(vals):
            return self.run(sub, vals, ds)[0]
        dep_idx = [i for i, d in enumerate(ds) if d]
        if name in SECANT_PRIMITIVES and len(dep_idx) == 1 and _is_float(vals[dep_idx[0]]):
            i = dep_idx[0]

            def unary(z):
                return self.bind(eqn, vals[:i] + [z] + vals[i + 1 :])[0]

            return [rescale_activation(unary, eps=self.eps)(vals[i])]
        if self.product_rule and name in ("mul", "div") and ds[1]:
            a, b = vals
            if name == "div":
                b = rescale_activation(lambda v: 1.0 / v, eps=self.eps)(b)
            return [paired_product(a, b) if ds[0] else a * b]
        if _is_linear(name, ds):
            return self.bind(eqn, vals)
        return self.generic(eqn, vals, ds)

    def generic(self, eqn, vals, ds):
        """No rule: the plain gradient at the input, plus a probe that measures the defect."""
        outs = self.bind(eqn, vals)
        fl = [i for i, (v, d) in enumerate(zip(vals, ds)) if d and _is_float(v)]
        for v in [vals[i] for i in fl] + outs:
            if jnp.ndim(v) == 0 or v.shape[0] != 2 * self.batch:
                raise ValueError(
                    f"{eqn.primitive.name}: an input-dependent value of shape {jnp.shape(v)} has no "
                    f"leading paired batch of {2 * self.batch}; f must treat batch items independently"
                )

        def fn(*fv):
            args = list(vals)
            for i, v in zip(fl, fv):
                args[i] = v
            return self.bind(eqn, args)

        if fl:
            tangents = jax.jvp(fn, tuple(vals[i] for i in fl), tuple(_delta(vals[i]) for i in fl))[1]
        else:
            tangents = [jnp.zeros_like(o) for o in outs]
        half = self.batch
        result = []
        for o, t in zip(outs, tangents):
            if not _is_float(o):
                result.append(o)
                continue
            self.defects.append((o[:half] - o[half:]) - t[:half])
            self.sites.append((eqn.primitive.name, tuple(o.shape[1:]), o.dtype))
            if self.probes is not None:
                o = o + self.probes[len(self.sites) - 1]
            result.append(o)
        return result


@functools.lru_cache(maxsize=32)
def _traced_explainer(f, shape: tuple, product_rule: bool, eps: float):
    paired = jax.ShapeDtypeStruct((2, *shape), jnp.float32)
    closed = jax.make_jaxpr(f)(paired)
    if len(closed.jaxpr.outvars) != 1:
        raise ValueError(f"the model f must map x[B, ...] to logits [B]; for a batch of 2 it returned {closed.out_avals}")
    validation.check_logits(np.zeros(closed.out_avals[0].shape, closed.out_avals[0].dtype), 2)  # shape, dtype

    def evaluate(xx, probes):
        tr = _Tracer(1, product_rule, eps, probes)
        out = tr.run(closed, [xx], [True])[0][0]
        return out, (tr.defects, tr.sites)

    tracer = _Tracer(1, product_rule, eps, None)
    jax.eval_shape(lambda xx: tracer.run(closed, [xx], [True])[0][0], paired)
    sites = tuple(tracer.sites)

    @jax.jit
    def explain(x, b):
        xx = jnp.stack([x, b])
        probes = [jnp.zeros((2, *s), dt) for _, s, dt in sites]
        out, pull, (defects, _) = jax.vjp(evaluate, xx, probes, has_aux=True)
        g_x, g_probes = pull(jnp.array([1.0, 0.0], out.dtype))
        shares = jnp.stack([jnp.sum(g[:1] * d) for g, d in zip(g_probes, defects)]) if sites else jnp.zeros(0)
        return (x - b) * g_x[0], out, shares

    return explain, tuple((name, s) for name, s, _ in sites)


def deeplift_traced(f: PredictFn, x, baseline=None, *, product_rule: bool = True, eps: float = 1e-6) -> DeepLiftTraced:
    """DeepLIFT by rewriting the traced program of `f`, with the summation gap split by operation.

    `f(x[B, ...]) -> logits[B]` is any JAX function whose batch items are independent; `x` and
    `baseline` (default zeros) have one item's shape. JAX traces `f` on the pair `[x, baseline]`
    and evaluates each primitive with a DeepLIFT rule:

    - elementwise nonlinearities (`SECANT_PRIMITIVES`: tanh, exp, a ReLU's max with 0, ...):
      the rescale rule, the secant slope (`rescale_activation`); exact;
    - with `product_rule=True`, a product of two input-dependent values: the exact product
      rule (`paired_product`), and a quotient `a / b` as `a * (1 / b)` with the secant of
      `1 / b`; exact;
    - linear maps (`LINEAR_PRIMITIVES`, convolutions and dense layers with fixed weights):
      their gradient, which is exact;
    - everything else (max-pooling, `where` with an input-dependent condition, and products
      when `product_rule=False`): the plain gradient at the input.

    The last kind is where summation to delta can fail. Each such operation `o` gets its
    defect `d_o = Δout_o - J_o Δin_o` (how far its gradient misses its own finite
    difference) and the DeepLIFT multiplier `M_o` of the logit with respect to its output;
    `sum(attributions) - Δf = -sum_o <M_o, d_o>`, so `gap` is split exactly into the shares
    `-<M_o, d_o>` (`sites`, summed per primitive in `by_operation`). The model is compiled once per (f, shape, settings).
    """
    validation.check_number(eps, "eps", positive=True)
    xa = validation.as_float_array(x, "x").astype(np.float32)
    if xa.ndim == 0 or not np.isfinite(xa).all():
        raise ValueError(f"x must be a finite array of one item's shape, got shape {xa.shape}")
    b = np.zeros_like(xa) if baseline is None else validation.as_float_array(baseline, "baseline").astype(np.float32)
    if b.shape != xa.shape:
        raise ValueError(f"baseline has shape {b.shape} but x has shape {xa.shape}; they must match")
    if not np.isfinite(b).all():
        raise ValueError("baseline contains NaN or infinite values")
    explain, sites = _traced_explainer(f, xa.shape, bool(product_rule), float(eps))
    attr, out, shares = explain(jnp.asarray(xa), jnp.asarray(b))
    validation.check_logits(out, 2)
    shares = -np.asarray(shares, dtype=np.float64)
    by_op: dict = {}
    for (name, _), s in zip(sites, shares):
        by_op[name] = by_op.get(name, 0.0) + float(s)
    fx, fb = float(out[0]), float(out[1])
    site_list = tuple((name, shape, float(s)) for (name, shape), s in zip(sites, shares))
    return DeepLiftTraced(attr, float(attr.sum()) - (fx - fb), fx, fb, by_op, site_list)
