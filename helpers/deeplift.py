"""DeepLIFT (rescale rule), DeepSHAP and the traced DeepLIFT with an exact product rule,
model-agnostic.

Shape glossary: B batch, L padded length, A = 21 channels, M references (DeepSHAP).

`make_deeplift(make_f)` needs a model factory `make_f(activation) -> f(x[B, L, A]) ->
logits[B]` whose nonlinearity it swaps for one with the rescale rule as its gradient;
`deeplift_traced(f, x, baseline)` needs only `f` and applies DeepLIFT's rules to every
primitive of the traced function (exact products, max shares). Both return attributions `[L, A]`
and the summation-to-delta gap. Split from `helpers.attribution` (gradient methods), which
shares its input checks.
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
from helpers.attribution import PredictFn, _as_baseline, _as_input


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
