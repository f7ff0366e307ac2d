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


def conjugate_gradient(
    hvp: Hvp, b, *, damping: float = 0.0, tol: float = 1e-5, maxiter: int = 100
) -> SolveResult:
    """Solves `(H + damping I) x = b` by conjugate gradients, with `H v = hvp(v)`.

    `b` is `[P]` or `[T, P]` (T right-hand sides, solved one after another in one compiled
    program). Stops when
    the relative residual `|A x - b| / |b|` is below `tol` or after `maxiter` iterations.
    CG needs A symmetric positive definite: if it meets a direction of non-positive
    curvature it stops there and sets `negative_curvature` (add damping). Koh & Liang use
    tol 1e-8 in float64; in float32 the residual stalls near 1e-6, hence the default 1e-5.
    """
    validation.check_callable(hvp, "hvp")
    b = jnp.asarray(validation.check_finite(validation.as_float_array(b, "b"), "b"))
    if b.ndim not in (1, 2) or b.shape[-1] == 0:
        raise ValueError(f"b must be [P] or [T, P], got {b.shape}")
    validation.check_int(maxiter, "maxiter", minimum=1)
    validation.check_number(tol, "tol", positive=True)
    damping = validation.check_number(damping, "damping", nonnegative=True)

    # One compiled program (T right-hand sides under vmap), not a chain of eager operations;
    # `hvp` is an argument (its data too, for a `make_hvp` product), so it compiles once.
    result = _cg_program(_as_pytree(hvp), b, damping=damping, tol=float(tol), maxiter=int(maxiter))
    if not bool(jnp.isfinite(result.x).all() & jnp.isfinite(result.residual).all()):
        # NaN compares False with the tolerance, so the loop stops as if it had converged.
        raise FloatingPointError(
            "conjugate gradients produced NaN or infinity: hvp returned non-finite products "
            "(check the parameters and the loss at them); the solve did not converge"
        )
    return result


@functools.partial(jax.jit, static_argnames=("damping", "tol", "maxiter"))
def _cg_program(hvp: Hvp, b: jax.Array, *, damping: float, tol: float, maxiter: int) -> SolveResult:
    def matvec(v):
        return hvp(v) + damping * v

    def solve_one(b):
        b_norm = jnp.linalg.norm(b)
        safe_norm = jnp.where(b_norm > 0, b_norm, 1.0)

        def cond(c):
            x, r, p, rr, k, neg = c
            return (k < maxiter) & (jnp.sqrt(rr) / safe_norm > tol) & ~neg

        def body(c):
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

        init = (jnp.zeros_like(b), b, b, jnp.vdot(b, b), jnp.array(0), jnp.array(False))
        x, _, _, _, k, neg = jax.lax.while_loop(cond, body, init)
        residual = jnp.linalg.norm(matvec(x) - b) / safe_norm  # the true residual, not CG's recursion
        return SolveResult(x, k, residual, neg)

    # Rows one after another (`lax.map`), each to its own tolerance: under `vmap` every row would
    # run as many iterations as the slowest, and batched products cost more per row on CPU.
    return jax.lax.map(solve_one, b) if b.ndim == 2 else solve_one(b)


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
