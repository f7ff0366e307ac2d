"""Inverse-Hessian-vector products for influence functions: conjugate gradients and LiSSA.

Both solve `(H + damping I) x = b` with `b` `[P]` or `[T, P]`, using only products
`H v = hvp(v)` (from `helpers.influence.make_hvp`, or any callable). Importable from
`helpers.influence` as before (`influence.conjugate_gradient`, `influence.lissa`,
`influence.SolveResult`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.tree_utils as otu

from helpers import validation

Hvp = Callable[..., jax.Array]  # hvp(v[P]) -> [P], or hvp(v[P], key) -> [P] (stochastic)

def _as_pytree(fn: Callable) -> jax.tree_util.Partial:
    """`fn` as a pytree that `jit` can take as an argument: a `make_hvp` product as it is
    (its data become arguments), any other callable with nothing inside (closed over)."""
    return fn if isinstance(fn, jax.tree_util.Partial) else jax.tree_util.Partial(fn)




class SolveResult(NamedTuple):
    x: jax.Array  # [P] or [T, P]: the solution of (H + damping I) x = b
    iterations: jax.Array  # [] or [T]: iterations (CG) or recursion depth (LiSSA) used
    residual: jax.Array  # [] or [T]: |(H + damping I) x - b| / |b|
    negative_curvature: jax.Array  # [] or [T] bool: CG met p^T A p <= 0 (A not positive definite)


LOOPS = ("device", "host")


def check_loop(loop) -> str:
    """`loop` as given, if it is one of `LOOPS`: 'device' runs a solver's iterations in one
    compiled `lax.while_loop`/`scan`; 'host' compiles one iteration and repeats it from Python
    (the same arithmetic). On CPU, a large model's products can run many times slower inside
    a compiled loop than called one by one (chapter 9's whole CNN: 0.56 s per product from
    Python, about 15 s per iteration in the loop, jax 0.10.2)."""
    if not isinstance(loop, str) or loop not in LOOPS:
        raise ValueError(f"loop must be one of {LOOPS}, got {loop!r}: 'host' for large models on CPU")
    return loop


def conjugate_gradient(
    hvp: Hvp, b, *, damping: float = 0.0, tol: float = 1e-5, maxiter: int = 100, loop: str = "device"
) -> SolveResult:
    """Solves `(H + damping I) x = b` by conjugate gradients, with `H v = hvp(v)`.

    `b` is `[P]` or `[T, P]` (T right-hand sides, solved one after another). Stops when
    the relative residual `|A x - b| / |b|` is below `tol` or after `maxiter` iterations.
    CG needs A symmetric positive definite: if it meets a direction of non-positive
    curvature it stops there and sets `negative_curvature` (add damping). Koh & Liang use
    tol 1e-8 in float64; in float32 the residual stalls near 1e-6, hence the default 1e-5.
    `loop` (`check_loop`): 'device' (one compiled program) or 'host' (one compiled iteration,
    repeated from Python; the same iterates).
    """
    validation.check_callable(hvp, "hvp")
    b = jnp.asarray(validation.check_finite(validation.as_float_array(b, "b"), "b"))
    if not jnp.issubdtype(b.dtype, jnp.floating):  # integer right-hand sides: solve in floating point
        b = b.astype(jnp.result_type(float))
    if b.ndim not in (1, 2) or b.shape[-1] == 0:
        raise ValueError(f"b must be [P] or [T, P], got {b.shape}")
    validation.check_int(maxiter, "maxiter", minimum=1)
    validation.check_number(tol, "tol", positive=True)
    damping = validation.check_number(damping, "damping", nonnegative=True)
    check_loop(loop)

    hvp = _as_pytree(hvp)  # an argument of the compiled code (its data too): compiles once
    if loop == "device":
        result = _cg_program(hvp, b, damping=damping, tol=float(tol), maxiter=int(maxiter))
    else:
        rows = [_cg_host(hvp, bi, damping=damping, tol=float(tol), maxiter=int(maxiter))
                for bi in (b if b.ndim == 2 else b[None])]
        result = SolveResult(*(jnp.stack(f) for f in zip(*rows)))
        if b.ndim == 1:
            result = SolveResult(*(f[0] for f in result))
    if not bool(jnp.isfinite(result.x).all() & jnp.isfinite(result.residual).all()):
        # NaN compares False with the tolerance, so the loop stops as if it had converged.
        raise FloatingPointError(
            "conjugate gradients produced NaN or infinity: hvp returned non-finite products "
            "(check the parameters and the loss at them); the solve did not converge"
        )
    return result


# One CG iteration, shared by the device loop and the host loop. The carry is
# (x, r, p, rr, k, neg): iterate, residual, direction, |r|^2, iterations, negative curvature met.
def _cg_init(b: jax.Array):
    return (jnp.zeros_like(b), b, b, jnp.vdot(b, b), jnp.array(0), jnp.array(False))


def _cg_go_on(c, safe_norm, tol, maxiter):
    _, _, _, rr, k, neg = c
    return (k < maxiter) & (jnp.sqrt(rr) / safe_norm > tol) & ~neg


def _cg_iteration(matvec: Callable, c):
    x, r, p, rr, k, neg = c
    ap = matvec(p)
    pap = jnp.vdot(p, ap)
    neg = pap <= 0
    alpha = jnp.where(neg, 0.0, rr / jnp.where(neg, 1.0, pap))
    x = x + alpha * p
    r = r - alpha * ap
    rr_new = jnp.vdot(r, r)
    p = r + (rr_new / rr) * p
    return x, r, p, rr_new, k + 1, neg


def _safe_norm(b):
    n = jnp.linalg.norm(b)
    return jnp.where(n > 0, n, 1.0)


def _true_residual(matvec: Callable, x, b):
    """|A x - b| / |b| recomputed with a product, not CG's recursion for r."""
    return jnp.linalg.norm(matvec(x) - b) / _safe_norm(b)


@functools.partial(jax.jit, static_argnames=("damping", "tol", "maxiter"))
def _cg_program(hvp: Hvp, b: jax.Array, *, damping: float, tol: float, maxiter: int) -> SolveResult:
    def matvec(v):
        return hvp(v) + damping * v

    def solve_one(b):
        safe_norm = _safe_norm(b)
        x, _, _, _, k, neg = jax.lax.while_loop(lambda c: _cg_go_on(c, safe_norm, tol, maxiter),
                                                functools.partial(_cg_iteration, matvec), _cg_init(b))
        return SolveResult(x, k, _true_residual(matvec, x, b), neg)

    # Rows one after another (`lax.map`), each to its own tolerance: under `vmap` every row would
    # run as many iterations as the slowest, and batched products cost more per row on CPU.
    return jax.lax.map(solve_one, b) if b.ndim == 2 else solve_one(b)


@functools.partial(jax.jit, static_argnames="damping")
def _cg_host_step(hvp: Hvp, c, *, damping: float):
    return _cg_iteration(lambda v: hvp(v) + damping * v, c)


@functools.partial(jax.jit, static_argnames="damping")
def _cg_true_residual(hvp: Hvp, x, b, *, damping: float):
    return _true_residual(lambda v: hvp(v) + damping * v, x, b)


def _cg_host(hvp: Hvp, b: jax.Array, *, damping: float, tol: float, maxiter: int) -> SolveResult:
    c, safe_norm = _cg_init(b), _safe_norm(b)
    while bool(_cg_go_on(c, safe_norm, tol, maxiter)):
        c = _cg_host_step(hvp, c, damping=damping)
    x, _, _, _, k, neg = c
    return SolveResult(x, k, _cg_true_residual(hvp, x, b, damping=damping), neg)


def lissa(
    hvp: Hvp,
    b,
    *,
    scale: float,
    damping: float = 0.0,
    depth: int = 1000,
    key: jax.Array | None = None,
    repeats: int = 1,
    full_hvp: Hvp | None = None,
) -> SolveResult:
    """Solves `(H + damping I) x = b` with LiSSA (Agarwal et al. 2017), as Koh & Liang do.

    The recursion `h <- b + h - (H + damping I) h / scale`, run `depth` times from h = b,
    is the truncated Neumann series of `scale (H + damping I)^-1 b`; the answer is
    `h / scale`. It converges only if every eigenvalue of `(H + damping I) / scale` lies in
    (0, 2): take `scale` above the largest eigenvalue (`spectrum.extreme_eigenvalues`) and expect
    about `scale / smallest eigenvalue` steps. With `key`, each step uses a fresh
    mini-batch HVP `hvp(v, key)` (from `make_hvp(..., batch_size=...)`) and `repeats`
    independent runs are averaged, the stochastic method of the paper; without, `hvp(v)` is
    the full-batch product and the recursion is deterministic. The residual is measured
    with the full-batch product: `hvp`, or `full_hvp(v)` in the stochastic case (without it
    the residual is NaN). Raises if the recursion diverges. `b` is `[P]` or `[T, P]`.
    """
    validation.check_callable(hvp, "hvp")
    validation.check_number(scale, "scale", positive=True)
    validation.check_int(depth, "depth", minimum=1)
    validation.check_int(repeats, "repeats", minimum=1)
    damping = validation.check_number(damping, "damping", nonnegative=True)
    if key is not None:
        validation.check_key(key)
    b = jnp.asarray(validation.check_finite(validation.as_float_array(b, "b"), "b"))
    if b.ndim not in (1, 2) or b.shape[-1] == 0:
        raise ValueError(f"b must be [P] or [T, P], got {b.shape}")
    stochastic = key is not None
    if not stochastic and repeats != 1:
        raise ValueError("repeats > 1 only makes sense for the stochastic version: pass a key")

    k0 = key if stochastic else jax.random.PRNGKey(0)  # unused when deterministic
    x = _lissa_program(_as_pytree(hvp), b.reshape(-1, b.shape[-1]), k0, scale=float(scale), damping=damping,
                       depth=int(depth), repeats=int(repeats), stochastic=stochastic)
    if not bool(jnp.isfinite(x).all()):
        raise FloatingPointError(
            f"LiSSA diverged (scale = {scale}): the scale must exceed the largest eigenvalue "
            f"of H + damping I; measure it with spectrum.extreme_eigenvalues and raise the scale"
        )

    flat_b = b.reshape(x.shape)
    check = hvp if not stochastic else full_hvp
    if check is None:
        residual = jnp.full(len(x), jnp.nan)
    else:
        ax = jax.vmap(check)(x) + damping * x
        residual = jnp.linalg.norm(ax - flat_b, axis=-1) / jnp.maximum(jnp.linalg.norm(flat_b, axis=-1), 1e-30)
    shape = b.shape[:-1]
    return SolveResult(
        x.reshape(b.shape), jnp.full(shape, depth), residual.reshape(shape), jnp.zeros(shape, bool)
    )


@functools.partial(jax.jit, static_argnames=("scale", "damping", "depth", "repeats", "stochastic"))
def _lissa_program(hvp: Hvp, b: jax.Array, k0: jax.Array, *, scale: float, damping: float, depth: int,
                   repeats: int, stochastic: bool) -> jax.Array:
    def run(bb, k):
        def step(h, kk):
            hv = hvp(h, kk) if stochastic else hvp(h)
            return bb + h - (hv + damping * h) / scale, None

        keys = jax.random.split(k, depth) if stochastic else jnp.zeros((depth, 2), jnp.uint32)
        h, _ = jax.lax.scan(step, bb, keys)
        return h / scale

    def solve_one(bb, k):
        ks = jax.random.split(k, repeats)
        return jax.vmap(lambda kk: run(bb, kk))(ks).mean(axis=0)

    return jax.vmap(solve_one, in_axes=(0, None))(b, k0)


def lbfgs_while(fun: Callable, theta0: jax.Array, *, maxiter: int, tol) -> tuple[jax.Array, jax.Array, jax.Array]:
    """`(theta, steps, |grad fun(theta)|)`: optax's L-BFGS on the scalar `fun` of a flat
    `theta0 [P]` inside one `lax.while_loop` (traceable: jit and vmap it), stopping once the
    gradient's norm is at most `tol` or after `maxiter` steps (at least one step)."""
    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(fun)

    def cond(c):
        t, state = c
        k = otu.tree_get(state, "count")
        gn = jnp.linalg.norm(otu.tree_get(state, "grad"))
        return (k == 0) | ((k < maxiter) & (gn > tol))

    def body(c):
        t, state = c
        value, g = value_and_grad(t, state=state)
        updates, state = opt.update(g, state, t, value=value, grad=g, value_fn=fun)
        return optax.apply_updates(t, updates), state

    t, state = jax.lax.while_loop(cond, body, (theta0, opt.init(theta0)))
    return t, otu.tree_get(state, "count"), jnp.linalg.norm(jax.grad(fun)(t))


class HostFit(NamedTuple):
    theta: jax.Array  # [P]: where the fit stopped
    steps: int  # L-BFGS steps taken
    grad_norm: float  # |grad fun(theta)|
    grad_norm0: float  # |grad fun(theta0)|, what a relative tolerance is relative to
    stalled: bool  # True: no step along the gradient itself was acceptable (the precision floor)


@functools.lru_cache(maxsize=8)
def _value_and_grad(fun: Callable):
    return jax.jit(jax.value_and_grad(fun))


@functools.lru_cache(maxsize=4)
def _lbfgs_direction(memory_size: int):
    tx = optax.scale_by_lbfgs(memory_size=memory_size)
    return jax.jit(tx.update), tx.init


def lbfgs_host(fun: Callable, theta0, *, args: tuple = (), maxiter: int, tol: float, relative: bool = False,
               memory_size: int = 10, max_halvings: int = 30, on_step: Callable | None = None) -> HostFit:
    """Minimises the scalar `fun(theta[P], *args)` by L-BFGS with the loop on the host.

    Each step takes optax's L-BFGS direction (`optax.scale_by_lbfgs`, the direction
    `optax.lbfgs` uses) and halves the step from 1 until it is accepted, each trial one
    compiled `value_and_grad` (with `args` as arguments: the data are not baked into the
    program). A trial needs a finite value and gradient, and then either the Armijo condition
    phi(a) <= phi(0) + 1e-4 a phi'(0), or Hager & Zhang's approximate Wolfe conditions
    (SIAM J. Optim. 16, 2005) sigma phi'(0) <= phi'(a) <= (2 delta - 1) phi'(0) with
    delta = 0.1, sigma = 0.9 and phi(a) <= phi(0) + 1e-6 |phi(0)|, phi(a) = fun(theta + a p).
    Hager & Zhang switch to the approximate conditions only once successive values are close;
    here both are tried at every step, so a step may raise the value by up to 1e-6 of its size:
    that is what lets the fit go on where float32 cannot resolve a decrease. A pair with
    s^T y <= 0 (no positive curvature along the step) would spoil the L-BFGS memory, which is
    then cleared, as it is when the direction is not a descent direction or no step along it
    is acceptable; the next direction is the scaled gradient. Stops once `|grad| <= tol`
    (`tol` times |grad fun(theta0)| if `relative`), after `maxiter` steps, or when no step
    along the scaled gradient is acceptable (`stalled`: the precision floor). `fun` should be
    one function object across calls (its compilation is cached on it). `on_step(steps, theta)`,
    if given, is called after every accepted step (to follow a quantity along the path).
    """
    validation.check_callable(fun, "fun")
    if not isinstance(args, tuple):
        raise TypeError(f"args must be a tuple of fun's extra arguments, got {type(args).__name__}: "
                        f"write args=(x,) for one")
    validation.check_int(maxiter, "maxiter", minimum=1)
    validation.check_number(tol, "tol", nonnegative=True)
    validation.check_int(memory_size, "memory_size", minimum=1)
    validation.check_int(max_halvings, "max_halvings", minimum=1)
    if on_step is not None:
        validation.check_callable(on_step, "on_step")
    t = jnp.asarray(validation.check_finite(validation.as_float_array(theta0, "theta0"), "theta0"))
    if not jnp.issubdtype(t.dtype, jnp.floating):
        t = t.astype(jnp.result_type(float))
    if t.ndim != 1:
        raise ValueError(f"theta0 must be a flat vector [P], got shape {t.shape}")
    value_and_grad = _value_and_grad(fun)
    direction, init = _lbfgs_direction(int(memory_size))
    f, g = value_and_grad(t, *args)
    if not (bool(jnp.isfinite(f)) and bool(jnp.isfinite(g).all())):
        raise FloatingPointError("fun or its gradient is NaN or infinite at theta0: check the objective and theta0")
    state, steps, stalled = init(t), 0, False
    gn = gn0 = float(jnp.linalg.norm(g))
    tol = tol * gn0 if relative else tol
    while steps < maxiter and gn > tol:
        fresh = int(otu.tree_get(state, "count")) == 0  # no memory: the direction is the scaled gradient
        p, state = direction(g, state, t)
        d = -p
        slope = float(jnp.vdot(g, d))
        if not slope < 0:  # not a descent direction (memory spoilt): clear it, take the scaled gradient
            state = init(t)
            continue
        step, accepted = 1.0, False
        for _ in range(max_halvings):
            t_new = t + step * d
            f_new, g_new = value_and_grad(t_new, *args)
            if bool(jnp.isfinite(f_new)) and bool(jnp.isfinite(g_new).all()):
                f_new_, slope_new = float(f_new), float(jnp.vdot(g_new, d))
                armijo = f_new_ <= float(f) + 1e-4 * step * slope
                approx_wolfe = f_new_ <= float(f) + 1e-6 * abs(float(f)) and 0.9 * slope <= slope_new <= -0.8 * slope
                if armijo or approx_wolfe:
                    accepted = True
                    break
            step *= 0.5
        if not accepted:
            if fresh:
                stalled = True
                break
            state = init(t)  # retry from the scaled gradient before calling it the floor
            continue
        if not float(jnp.vdot(t_new - t, g_new - g)) > 0:
            state = init(t_new)  # no positive curvature along the step: the pair would spoil the memory
        t, f, g = t_new, f_new, g_new
        gn, steps = float(jnp.linalg.norm(g)), steps + 1
        if on_step is not None:
            on_step(steps, t)
    return HostFit(t, steps, gn, gn0, stalled)
