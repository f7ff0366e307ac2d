"""Influence functions (Koh & Liang 2017) and TracIn (Pruthi et al. 2020) for any JAX model.

Shape glossary: N training examples, T test examples, R removed examples, P parameters
(the model's parameter pytree flattened into one vector), `...` any per-example shape.

Everything here works on a *per-example loss* `loss_fn(params, x[B, ...], y[B]) -> [B]`
and a parameter pytree, so it applies to any JAX model (a haiku `apply`, a hand-written
logistic regression, the dense head of the CNN on frozen features). The training objective
is

    R(theta) = (1 / N) sum_i w_i loss_i(theta) + (weight_decay / 2) |theta|^2,

with weights w_i = 1 for the model as trained. Removing training example j is w_j = 0
(the 1 / N stays, so the regulariser keeps its weight; see `fit`). Its Hessian H is what
influence functions invert; `damping` adds `damping * I` to it on top of the weight decay.

Sign conventions (Koh & Liang's):
  up_loss[t, i] = -grad L_t^T H^-1 grad loss_i     effect on the test loss L_t of
                                                     up-weighting example i by eps (per eps)
  removal[t, i] = -up_loss[t, i] / N                predicted change of L_t when i is removed
A *helpful* training example has removal > 0 (taking it out raises the test loss), a
*harmful* one removal < 0.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.tree_utils as otu
from jax.flatten_util import ravel_pytree

Params = Any
LossFn = Callable[[Params, jax.Array, jax.Array], jax.Array]  # per-example losses [B]
Hvp = Callable[..., jax.Array]  # hvp(v[P]) -> [P], or hvp(v[P], key) -> [P] (stochastic)

MAX_EXACT_PARAMS = 4096  # an exact Hessian above this is 64 MiB of float32 or more


# ----------------------------------------------------------------------------- checks


def check_examples(x, y, *, name: str = "training set") -> tuple[jax.Array, jax.Array]:
    """`(x, y)` as arrays after checking they are a non-empty, finite set of N examples."""
    x, y = jnp.asarray(x), jnp.asarray(y)
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"the {name} is empty: influence needs at least one example (x {x.shape})")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(
            f"the {name} has {x.shape[0]} inputs but labels of shape {y.shape}: pass y as [N]"
        )
    for arr, what in ((x, "inputs"), (y, "labels")):
        if jnp.issubdtype(arr.dtype, jnp.floating) and not bool(jnp.isfinite(arr).all()):
            raise ValueError(f"the {name}'s {what} contain NaN or infinity: clean them first")
    return x, y


def _check_weight_decay(weight_decay: float) -> None:
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")


def _check_weights(weights, n: int) -> jax.Array:
    if weights is None:
        return jnp.ones(n)
    w = jnp.asarray(weights)
    if w.shape[-1] != n:
        raise ValueError(f"weights of shape {w.shape} for {n} training examples: the last axis must be N")
    return w


def flatten(params: Params) -> tuple[jax.Array, Callable[[jax.Array], Params]]:
    """`(theta [P], unravel)`: the parameter pytree as one vector, and the way back."""
    return ravel_pytree(params)


# ----------------------------------------------------------------------------- objective


def make_objective(
    loss_fn: LossFn, params: Params, x, y, *, weight_decay: float = 0.0
) -> tuple[Callable[[jax.Array, jax.Array], jax.Array], jax.Array, Callable]:
    """`(objective, theta, unravel)` with `objective(theta[P], weights[N]) -> R` (a scalar).

    `theta` is `params` flattened; `objective(theta, 1)` is the training objective.
    """
    x, y = check_examples(x, y)
    _check_weight_decay(weight_decay)
    theta, unravel = flatten(params)
    return _objective(loss_fn, unravel, x, y, weight_decay), theta, unravel


def make_hvp(
    loss_fn: LossFn,
    params: Params,
    x,
    y,
    *,
    weight_decay: float = 0.0,
    batch_size: int | None = None,
) -> Hvp:
    """A jitted Hessian-vector product of the training objective at `params`.

    Forward-over-reverse: `H v = d/de grad R(theta + e v)`, one `jax.jvp` of `jax.grad`,
    never forming H (cost: about two gradients). With `batch_size=None` it is `hvp(v[P])`
    over the whole training set. With a `batch_size` it is `hvp(v[P], key)` over a random
    mini-batch of that size drawn with `key` (an unbiased estimate of H v, what LiSSA uses).
    """
    x, y = check_examples(x, y)
    _check_weight_decay(weight_decay)
    theta, unravel = flatten(params)
    n = x.shape[0]

    def grad_on(xb, yb):  # gradient of the objective over (xb, yb), all weights 1
        grad = jax.grad(_objective(loss_fn, unravel, xb, yb, weight_decay))
        return lambda t: grad(t, 1.0)

    if batch_size is None:
        g = grad_on(x, y)

        @jax.jit
        def hvp(v: jax.Array) -> jax.Array:
            return jax.jvp(g, (theta,), (v,))[1]

        return hvp
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be between 1 and N = {n}, got {batch_size}")

    @jax.jit
    def hvp_sampled(v: jax.Array, key: jax.Array) -> jax.Array:
        idx = jax.random.choice(key, n, (batch_size,), replace=False)
        return jax.jvp(grad_on(x[idx], y[idx]), (theta,), (v,))[1]

    return hvp_sampled


def exact_hessian(
    loss_fn: LossFn, params: Params, x, y, *, weight_decay: float = 0.0, max_params: int = MAX_EXACT_PARAMS
) -> jax.Array:
    """The Hessian `[P, P]` of the training objective, for small models only (the check that
    the iterative solvers are right). Refuses more than `max_params` parameters."""
    objective, theta, _ = make_objective(loss_fn, params, x, y, weight_decay=weight_decay)
    if theta.size > max_params:
        raise ValueError(
            f"{theta.size} parameters: the exact Hessian would hold {theta.size ** 2:,} numbers. "
            f"Use Hessian-vector products (make_hvp) with conjugate_gradient or lissa, or "
            f"take the Hessian of a small part of the model (e.g. the last layer)."
        )
    return jax.jit(jax.hessian(objective))(theta, jnp.ones(x.shape[0], theta.dtype))  # one compiled program


# ----------------------------------------------------------------------------- solvers


class SolveResult(NamedTuple):
    x: jax.Array  # [P] or [T, P]: the solution of (H + damping I) x = b
    iterations: jax.Array  # [] or [T]: iterations (CG) or recursion depth (LiSSA) used
    residual: jax.Array  # [] or [T]: |(H + damping I) x - b| / |b|
    negative_curvature: jax.Array  # [] or [T] bool: CG met p^T A p <= 0 (A not positive definite)


def conjugate_gradient(
    hvp: Hvp, b, *, damping: float = 0.0, tol: float = 1e-5, maxiter: int = 100
) -> SolveResult:
    """Solves `(H + damping I) x = b` by conjugate gradients, with `H v = hvp(v)`.

    `b` is `[P]` or `[T, P]` (T right-hand sides solved together under `vmap`). Stops when
    the relative residual `|A x - b| / |b|` is below `tol` or after `maxiter` iterations.
    CG needs A symmetric positive definite: if it meets a direction of non-positive
    curvature it stops there and sets `negative_curvature` (add damping). Koh & Liang use
    tol 1e-8 in float64; in float32 the residual stalls near 1e-6, hence the default 1e-5.
    """
    b = jnp.asarray(b)
    if b.ndim not in (1, 2):
        raise ValueError(f"b must be [P] or [T, P], got {b.shape}")
    if maxiter < 1 or tol <= 0:
        raise ValueError(f"need maxiter >= 1 and tol > 0, got maxiter={maxiter}, tol={tol}")

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

    # One compiled program (T right-hand sides under vmap), not a chain of eager operations.
    return jax.jit(jax.vmap(solve_one) if b.ndim == 2 else solve_one)(b)


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
    (0, 2): take `scale` above the largest eigenvalue (`extreme_eigenvalues`) and expect
    about `scale / smallest eigenvalue` steps. With `key`, each step uses a fresh
    mini-batch HVP `hvp(v, key)` (from `make_hvp(..., batch_size=...)`) and `repeats`
    independent runs are averaged, the stochastic method of the paper; without, `hvp(v)` is
    the full-batch product and the recursion is deterministic. The residual is measured
    with the full-batch product: `hvp`, or `full_hvp(v)` in the stochastic case (without it
    the residual is NaN). Raises if the recursion diverges. `b` is `[P]` or `[T, P]`.
    """
    if scale <= 0 or depth < 1 or repeats < 1:
        raise ValueError(f"need scale > 0, depth >= 1, repeats >= 1; got {scale}, {depth}, {repeats}")
    b = jnp.asarray(b)
    if b.ndim not in (1, 2):
        raise ValueError(f"b must be [P] or [T, P], got {b.shape}")
    stochastic = key is not None
    if not stochastic and repeats != 1:
        raise ValueError("repeats > 1 only makes sense for the stochastic version: pass a key")

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

    k0 = key if stochastic else jax.random.PRNGKey(0)  # unused when deterministic
    full = jax.jit(jax.vmap(solve_one, in_axes=(0, None)))
    x = full(b.reshape(-1, b.shape[-1]), k0)
    if not bool(jnp.isfinite(x).all()):
        raise FloatingPointError(
            f"LiSSA diverged (scale = {scale}): the scale must exceed the largest eigenvalue "
            f"of H + damping I; measure it with extreme_eigenvalues and raise the scale"
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


def extreme_eigenvalues(hvp: Hvp, dim: int, key: jax.Array, *, iters: int = 100) -> tuple[float, float]:
    """`(largest, smallest)` eigenvalue of H by power iteration with `hvp(v[dim])`.

    The largest (in magnitude) from H, then the smallest from the shifted matrix
    `largest I - H`. A negative smallest value means the objective is not convex there
    and H^-1 is not a meaningful quadratic model: use damping above its magnitude.
    """
    if dim < 1 or iters < 1:
        raise ValueError(f"need dim >= 1 and iters >= 1, got {dim}, {iters}")

    def power(matvec, v):
        def body(v, _):
            w = matvec(v)
            return w / jnp.linalg.norm(w), None

        v, _ = jax.lax.scan(body, v / jnp.linalg.norm(v), None, length=iters)
        return jnp.vdot(v, matvec(v))

    @jax.jit
    def both(k1, k2):  # one compiled program for the two runs
        top = power(hvp, jax.random.normal(k1, (dim,)))
        return top, power(lambda v: top * v - hvp(v), jax.random.normal(k2, (dim,)))

    top, shifted = both(*jax.random.split(key))
    return float(top), float(top - shifted)


class LanczosResult(NamedTuple):
    ritz_values: np.ndarray  # [K]: eigenvalues of the K x K tridiagonal matrix, ascending
    error_bounds: np.ndarray  # [K]: each Ritz value has an eigenvalue of H within this distance
    steps: int  # K, the number of Hessian-vector products used


def lanczos(hvp: Hvp, dim: int, key: jax.Array, *, steps: int = 50) -> LanczosResult:
    """The extreme eigenvalues of a symmetric H from `steps` products `hvp(v[dim])`.

    Lanczos builds an orthonormal basis Q of the Krylov space {v, Hv, ..., H^(K-1) v}
    (re-orthogonalised against every earlier vector, which float32 needs) in which H is
    the tridiagonal T = Q^T H Q; the eigenvalues of T, the Ritz values, approximate the
    extreme eigenvalues of H far faster than power iteration (Golub & Van Loan,
    *Matrix Computations*, ch. 10). Each Ritz value theta with eigenvector s of T has an
    eigenvalue of H within |beta_K s_K|, its `error_bounds` entry. The smallest Ritz value
    is never below the smallest eigenvalue of H (it is a Rayleigh quotient): a negative one
    proves negative curvature, a positive one only fails to find any.
    """
    if dim < 1 or not 1 <= steps <= dim:
        raise ValueError(f"need dim >= 1 and 1 <= steps <= dim, got dim={dim}, steps={steps}")
    v0 = jax.random.normal(key, (dim,))
    q0 = v0 / jnp.linalg.norm(v0)

    def body(c, j):
        basis, alphas, betas = c
        q = basis[j]
        w = hvp(q)
        alpha = jnp.vdot(q, w)
        # Gram-Schmidt against every vector so far, twice (rows after j are still zero).
        w = w - basis.T @ (basis @ w)
        w = w - basis.T @ (basis @ w)
        beta = jnp.linalg.norm(w)
        nxt = jnp.where(beta > 0, w / jnp.where(beta > 0, beta, 1.0), 0.0)
        basis = basis.at[j + 1].set(nxt)
        return (basis, alphas.at[j].set(alpha), betas.at[j].set(beta)), None

    @jax.jit
    def run(q0):
        basis = jnp.zeros((steps + 1, dim), q0.dtype).at[0].set(q0)
        init = (basis, jnp.zeros(steps, q0.dtype), jnp.zeros(steps, q0.dtype))
        return jax.lax.scan(body, init, jnp.arange(steps))[0]

    _, alphas, betas = run(q0)
    a, b = np.asarray(alphas, np.float64), np.asarray(betas, np.float64)
    t = np.diag(a) + np.diag(b[:-1], 1) + np.diag(b[:-1], -1)
    theta, s = np.linalg.eigh(t)
    return LanczosResult(theta, np.abs(b[-1] * s[-1]), steps)


# ----------------------------------------------------------------------------- gradients


@functools.partial(jax.jit, static_argnames="loss_fn")
def _grads_chunk(params: Params, xb: jax.Array, yb: jax.Array, *, loss_fn: LossFn) -> jax.Array:
    theta, unravel = flatten(params)

    def one(xi, yi):
        return jax.grad(lambda t: loss_fn(unravel(t), xi[None], yi[None])[0])(theta)

    return jax.vmap(one)(xb, yb)


def per_example_grads(loss_fn: LossFn, params: Params, x, y, *, batch_size: int = 512) -> jax.Array:
    """`[N, P]`: the gradient of each example's loss (no regulariser), by `vmap` of
    `jax.grad`, in chunks of `batch_size` to bound memory (N P numbers in all).

    Compiled once per `loss_fn` (pass the same function object to reuse the compilation)."""
    x, y = check_examples(x, y, name="set of examples")
    return jnp.concatenate(
        [_grads_chunk(params, x[i : i + batch_size], y[i : i + batch_size], loss_fn=loss_fn)
         for i in range(0, x.shape[0], batch_size)]
    )


@functools.partial(jax.jit, static_argnames="loss_fn")
def _jvp_chunk(params: Params, xb: jax.Array, yb: jax.Array, d: jax.Array, *, loss_fn: LossFn) -> jax.Array:
    theta, unravel = flatten(params)

    def along(di):
        return jax.jvp(lambda t: loss_fn(unravel(t), xb, yb), (theta,), (di,))[1]

    return jax.vmap(along)(d)


def directional_derivatives(
    loss_fn: LossFn, params: Params, x, y, directions, *, batch_size: int = 8192
) -> jax.Array:
    """`[T, N]`: `grad loss_i . d_t` for every example i and direction `d_t` (`directions`
    `[T, P]` or `[P]` -> `[N]`), without forming the `[N, P]` gradients: one forward-mode
    `jax.jvp` of the vector of losses per direction, `vmap`ped over the directions."""
    x, y = check_examples(x, y, name="set of examples")
    theta, _ = flatten(params)
    d = jnp.asarray(directions)
    single = d.ndim == 1
    d = d[None] if single else d
    if d.ndim != 2 or d.shape[1] != theta.size:
        raise ValueError(f"directions must be [T, {theta.size}] or [{theta.size}], got {jnp.shape(directions)}")
    out = jnp.concatenate(
        [_jvp_chunk(params, x[i : i + batch_size], y[i : i + batch_size], d, loss_fn=loss_fn)
         for i in range(0, x.shape[0], batch_size)], axis=1
    )
    return out[0] if single else out


# ----------------------------------------------------------------------------- influence


class InfluenceResult(NamedTuple):
    up_loss: jax.Array  # [T, N]: d L_test / d eps for up-weighting training example i by eps
    removal: jax.Array  # [T, N]: predicted change in test loss when example i is removed
    s_test: jax.Array  # [T, P]: (H + damping I)^-1 grad L_test
    solve: SolveResult  # how the inverse-HVP went (iterations, residuals)


def influence(
    loss_fn: LossFn,
    params: Params,
    train: tuple,
    test: tuple,
    *,
    weight_decay: float = 0.0,
    damping: float = 0.0,
    solver: str = "cg",
    tol: float = 1e-5,
    maxiter: int = 100,
    scale: float | None = None,
    depth: int = 1000,
) -> InfluenceResult:
    """Influence of every training example on the loss at every test example.

    `train = (x[N, ...], y[N])`, `test = (x[T, ...], y[T])`; `params` should be a minimum
    of the training objective (the formula is a Taylor expansion around one). Computes
    `s_test = (H + damping I)^-1 grad L_test` with `solver` "cg" (`tol`, `maxiter`),
    "lissa" (`scale`, `depth`) or "exact" (a dense solve, small models only), then all
    `grad loss_i . s_test` at once with `directional_derivatives`. Raises if a solve
    did not converge (CG residual above 100 tol, or negative curvature): add damping.
    """
    xtr, ytr = check_examples(*train)
    xte, yte = check_examples(*test, name="test set")
    theta, _ = flatten(params)
    n = xtr.shape[0]
    g_test = per_example_grads(loss_fn, params, xte, yte)  # [T, P]
    if solver == "exact":
        h = exact_hessian(loss_fn, params, xtr, ytr, weight_decay=weight_decay)
        a = h + damping * jnp.eye(theta.size, dtype=h.dtype)
        s = jnp.linalg.solve(a, g_test.T).T
        res = jnp.linalg.norm(s @ a - g_test, axis=1) / jnp.linalg.norm(g_test, axis=1)
        solve = SolveResult(s, jnp.zeros(len(s), int), res, jnp.zeros(len(s), bool))
    elif solver in ("cg", "lissa"):
        hvp = make_hvp(loss_fn, params, xtr, ytr, weight_decay=weight_decay)
        if solver == "cg":
            solve = conjugate_gradient(hvp, g_test, damping=damping, tol=tol, maxiter=maxiter)
            if bool(solve.negative_curvature.any()):
                raise ValueError(
                    "conjugate gradients met negative curvature: the Hessian is not positive "
                    "definite at these parameters (not a minimum, or a non-convex model). "
                    "Add damping above the magnitude of its smallest eigenvalue "
                    "(extreme_eigenvalues) or train to a minimum first."
                )
            if bool((solve.residual > 100 * tol).any()):
                raise ValueError(
                    f"conjugate gradients did not converge in {maxiter} iterations (worst "
                    f"relative residual {float(solve.residual.max()):.2g}): raise maxiter or damping"
                )
        else:
            if scale is None:
                raise ValueError("LiSSA needs a scale above the largest eigenvalue of H + damping I")
            solve = lissa(hvp, g_test, scale=scale, damping=damping, depth=depth)
    else:
        raise ValueError(f"unknown solver {solver!r}: use 'cg', 'lissa' or 'exact'")
    dots = directional_derivatives(loss_fn, params, xtr, ytr, solve.x)  # [T, N]
    return InfluenceResult(-dots, dots / n, solve.x, solve)


def tracin(
    loss_fn: LossFn,
    checkpoints: Sequence[Params],
    learning_rates: Sequence[float],
    train: tuple,
    test: tuple,
) -> jax.Array:
    """TracIn-CP scores `[T, N]`: `sum_k lr_k grad L_test(theta_k) . grad loss_i(theta_k)`
    over saved checkpoints (Pruthi et al. 2020). Positive: a gradient step on example i
    lowered the test loss (a proponent), negative: raised it (an opponent). No Hessian."""
    if len(checkpoints) == 0 or len(checkpoints) != len(learning_rates):
        raise ValueError(
            f"need one learning rate per checkpoint and at least one checkpoint; got "
            f"{len(checkpoints)} checkpoints and {len(learning_rates)} learning rates"
        )
    xtr, ytr = check_examples(*train)
    xte, yte = check_examples(*test, name="test set")
    total = 0.0
    for params, lr in zip(checkpoints, learning_rates, strict=True):
        g_test = per_example_grads(loss_fn, params, xte, yte)
        total = total + lr * directional_derivatives(loss_fn, params, xtr, ytr, g_test)
    return total


# ----------------------------------------------------------------------------- retraining


class FitResult(NamedTuple):
    params: Params
    iterations: jax.Array  # [] or [R]
    grad_norm: jax.Array  # [] or [R]: |grad R| at the end


def _objective(loss_fn: LossFn, unravel: Callable, x, y, weight_decay):
    n = x.shape[0]

    def objective(theta: jax.Array, weights: jax.Array) -> jax.Array:
        losses = loss_fn(unravel(theta), x, y)
        return jnp.sum(weights * losses) / n + 0.5 * weight_decay * jnp.vdot(theta, theta)

    return objective


@functools.partial(jax.jit, static_argnames=("loss_fn", "method", "tol", "maxiter"))
def _fit(params, x, y, w, weight_decay, *, loss_fn, method, tol, maxiter):
    theta0, unravel = flatten(params)
    objective = _objective(loss_fn, unravel, x, y, weight_decay)
    if method == "newton":
        grad, hess = jax.grad(objective), jax.hessian(objective)

        def run(wi):
            def cond(c):
                t, k, gn = c
                return (k < maxiter) & (gn > tol)

            def body(c):
                t, k, _ = c
                t = t - jnp.linalg.solve(hess(t, wi), grad(t, wi))
                return t, k + 1, jnp.linalg.norm(grad(t, wi))

            return jax.lax.while_loop(cond, body, (theta0, 0, jnp.linalg.norm(grad(theta0, wi))))

    else:
        opt = optax.lbfgs()

        def run(wi):
            fun = lambda t: objective(t, wi)  # noqa: E731
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

    t, k, gn = jax.vmap(run)(w) if w.ndim == 2 else run(w)
    return (jax.vmap(unravel)(t) if w.ndim == 2 else unravel(t)), k, gn


def fit(
    loss_fn: LossFn,
    params: Params,
    x,
    y,
    *,
    weight_decay: float = 0.0,
    weights=None,
    method: str = "lbfgs",
    tol: float = 1e-6,
    maxiter: int = 500,
) -> FitResult:
    """Minimises the training objective from `params` (full batch), to a gradient norm `tol`.

    `weights` `[N]` or `[R, N]` (one fit per row, `vmap`ped): example weights; a leave-one-
    out retraining is a row of ones with a 0 at the removed example. `method` "newton"
    (exact Hessian, for small convex models: converges to machine precision in a few
    steps) or "lbfgs" (optax's L-BFGS with a zoom line search, any size). Under `vmap`
    every row runs as many iterations as the slowest one; for large models a loop over
    rows can be faster. Compiled once per `loss_fn` object and shapes.
    """
    x, y = check_examples(x, y)
    _check_weight_decay(weight_decay)
    if method not in ("newton", "lbfgs"):
        raise ValueError(f"unknown method {method!r}: use 'newton' or 'lbfgs'")
    theta0, _ = flatten(params)
    if method == "newton" and theta0.size > MAX_EXACT_PARAMS:
        raise ValueError(f"Newton's method forms the {theta0.size}^2 Hessian: use method='lbfgs'")
    w = _check_weights(weights, x.shape[0]).astype(theta0.dtype)
    p, k, gn = _fit(params, x, y, w, weight_decay, loss_fn=loss_fn, method=method, tol=float(tol), maxiter=int(maxiter))
    return FitResult(p, k, gn)


def removal_weights(n: int, removed) -> np.ndarray:
    """`[R, N]` example weights, row r all ones but a 0 at `removed[r]` (leave-one-out)."""
    removed = np.asarray(removed)
    if n < 1:
        raise ValueError("the training set is empty")
    if removed.ndim != 1 or removed.size == 0 or removed.min() < 0 or removed.max() >= n:
        raise ValueError(f"removed must be a non-empty [R] array of indices in [0, {n}), got {removed!r}")
    w = np.ones((removed.size, n))
    w[np.arange(removed.size), removed] = 0.0
    return w


# ----------------------------------------------------------------------------- a convex model


def composition_features(x) -> jax.Array:
    """`[B, 20]` amino-acid fractions of one-hot peptides `x [B, L, A]` (padding ignored)."""
    x = jnp.asarray(x)
    if x.ndim != 3 or x.shape[-1] != 21:
        raise ValueError(f"expected one-hot peptides [B, L, 21], got {x.shape}")
    counts = x[..., 1:].sum(axis=1)
    n = counts.sum(axis=-1, keepdims=True)
    if bool((n == 0).any()):
        raise ValueError("an input holds no residue (all padding or all zero): not a peptide")
    return counts / n


def logistic_loss(params: dict, x: jax.Array, y: jax.Array) -> jax.Array:
    """Per-example loss `[B]` of logistic regression `logit = x @ w + b` on features `x [B, D]`
    (params `{"w": [D], "b": []}`), binary cross-entropy with labels in {0, 1}."""
    logits = x @ params["w"] + params["b"]
    return optax.sigmoid_binary_cross_entropy(logits, y.astype(logits.dtype))


# ----------------------------------------------------------------------------- the CNN's dense head

# Chapter 9 studies the CNN with its convolutional feature layers frozen: the dense head,
# 53 -> 256 -> 64 -> 1, trained to a minimum of R on the 53 head features of the shipped
# CNN. Training it (about 1400 full-batch L-BFGS steps) is precomputed by
#
#     python -m helpers.influence        # writes helpers/pretrained/influence_head.npz
#
# and `load_head_study` reads the file; `--small` runs a few steps only (a smoke test).

HEAD_FILE = "influence_head.npz"
HEAD_SETTINGS: dict[str, float] = {
    "weight_decay": 1e-2,  # lambda of R
    "sgd_lr": 0.5,  # plain SGD on mini-batch means of R
    "sgd_epochs": 30,
    "every": 3,  # a checkpoint every 3 epochs (TracIn's)
    "batch_size": 64,
    "tol": 1e-6,  # L-BFGS until |grad R| < tol
    "maxiter": 3000,
}
# How far the test logits at the end of the SGD phase may move when it is rerun elsewhere.
# Measured: identical with 1 and 2 threads; at most 1e-6 when the initial weights are
# jittered by 1e-7 (relative, 6 draws), i.e. the phase damps rounding differences. The
# tolerance is 1000 x that, still 1e-4 of the largest logit (5.9).
SGD_LOGIT_TOL = 1e-3


@functools.cache
def _head_model():
    from helpers import model as model_lib

    return model_lib.make_head()


def head_loss(params: Params, f: jax.Array, y: jax.Array) -> jax.Array:
    """Per-example loss `[B]` of the CNN's dense head on features `f [B, 53]`: binary
    cross-entropy of its logits (the interface every function of this module takes)."""
    return optax.sigmoid_binary_cross_entropy(_head_model().apply(params, f), y)


class HeadProblem(NamedTuple):
    feat_train: jax.Array  # [N, 53] head features of the training peptides
    y_train: jax.Array  # [N] float32 labels
    feat_test: jax.Array  # [T, 53]
    y_test: jax.Array  # [T]


def head_problem(cnn_params: Params | None = None) -> HeadProblem:
    """The head's data: the 53 features of every training and test peptide under the
    shipped CNN (or `cnn_params`), computed once in batches of 1024."""
    from helpers import data as data_lib
    from helpers import model as model_lib

    if cnn_params is None:
        cnn_params, _ = model_lib.load_pretrained()
    features = jax.jit(model_lib.make_features().apply)
    out = []
    for split in ("train", "test"):
        s = data_lib.load_split(split)
        f = jnp.concatenate([features(cnn_params, s.x[i : i + 1024]) for i in range(0, len(s.y), 1024)])
        out += [f, jnp.asarray(s.y, jnp.float32)]
    return HeadProblem(*out)


class HeadRun(NamedTuple):
    fit: FitResult | None  # the L-BFGS minimum (None with polish=False)
    checkpoints: list  # parameters after every `every` SGD epochs
    sgd_params: Params  # where SGD ended and L-BFGS started


def train_head(
    feat_train, y_train, *, seed: int, weight_decay: float = HEAD_SETTINGS["weight_decay"],
    sgd_lr: float = HEAD_SETTINGS["sgd_lr"], sgd_epochs: int = HEAD_SETTINGS["sgd_epochs"],
    every: int = HEAD_SETTINGS["every"], batch_size: int = HEAD_SETTINGS["batch_size"],
    tol: float = HEAD_SETTINGS["tol"], maxiter: int = HEAD_SETTINGS["maxiter"], polish: bool = True,
) -> HeadRun:
    """SGD from a fresh init (checkpoints every `every` epochs), then L-BFGS to the minimum."""
    from helpers import training

    head, n = _head_model(), len(y_train)
    if not 1 <= batch_size <= n or sgd_epochs < 1 or every < 1:
        raise ValueError(f"need 1 <= batch_size <= N = {n}, sgd_epochs >= 1, every >= 1; "
                         f"got {batch_size}, {sgd_epochs}, {every}")
    p = head.init(jax.random.PRNGKey(seed), feat_train[:1])
    opt = optax.chain(optax.add_decayed_weights(weight_decay), optax.sgd(sgd_lr))  # SGD on R
    epoch = training.make_epoch(training.make_update(head, opt))
    state = training.TrainState(p, opt.init(p), jnp.zeros([], jnp.int32))
    rng, checkpoints = np.random.default_rng(seed), []
    for ep in range(1, sgd_epochs + 1):
        batches = rng.permutation(n)[: n // batch_size * batch_size].reshape(-1, batch_size)
        state, _ = epoch(state, feat_train, y_train, jnp.asarray(batches))
        if ep % every == 0:
            checkpoints.append(state.params)
    if not polish:
        return HeadRun(None, checkpoints, state.params)
    final = fit(head_loss, state.params, feat_train, y_train, weight_decay=weight_decay, tol=tol, maxiter=maxiter)
    return HeadRun(final, checkpoints, state.params)


def head_study(*, seeds: tuple[int, ...] = (0, 1), settings: dict | None = None, command: str = "") -> dict[str, np.ndarray]:
    """What `python -m helpers.influence` ships: the head of `seeds[0]` trained to its
    minimum (`theta`, flattened, with L-BFGS `iterations` and final `grad_norm`), the test
    logits where its SGD phase ended (`sgd_test_logits`, a fingerprint for rerunning the SGD
    phase elsewhere), and for every further seed its test losses and final |grad R|
    (`other_test_losses [S-1, T]`, `other_grad_norm`); the settings as `config_*`."""
    settings = {**HEAD_SETTINGS, **(settings or {})}
    prob = head_problem()
    head = _head_model()
    runs = [train_head(prob.feat_train, prob.y_train, seed=s, **settings) for s in seeds]
    out = {
        "theta": np.asarray(flatten(runs[0].fit.params)[0]),
        "iterations": np.asarray(runs[0].fit.iterations),
        "grad_norm": np.asarray(runs[0].fit.grad_norm),
        "sgd_test_logits": np.asarray(head.apply(runs[0].sgd_params, prob.feat_test)),
        "test_losses": np.asarray(head_loss(runs[0].fit.params, prob.feat_test, prob.y_test)),
        "other_seeds": np.array(seeds[1:], int),
        "other_test_losses": np.array([np.asarray(head_loss(r.fit.params, prob.feat_test, prob.y_test)) for r in runs[1:]]),
        "other_grad_norm": np.array([float(r.fit.grad_norm) for r in runs[1:]]),
        "other_iterations": np.array([int(r.fit.iterations) for r in runs[1:]]),
        "config_seed": np.array(seeds[0]),
        "config_command": np.array(command),
        "config_jax": np.array(jax.__version__),
    }
    out.update({f"config_{k}": np.array(v) for k, v in settings.items()})
    return out


WEAK_FILE = "influence_weak.npz"


def weak_study(*, weight_decay: float = 1e-3, seeds: tuple[int, ...] = (0, 1), removals: int = 15,
               lanczos_steps: int = 60, cg_maxiter: int = 500, maxiter: int = 6000, command: str = "") -> dict[str, np.ndarray]:
    """The head at a weaker weight decay (Koh & Liang's 1e-3 by default): `train_head` for
    each seed (more L-BFGS steps allowed), the test losses of every seed
    (`test_losses [S, T]`), the seed-0 head (`theta`), Lanczos's smallest Ritz values with
    their bounds, influence on the test peptide of largest loss (`test_index`) by CG, and
    leave-one-out retraining from the seed-0 minimum for the `removals` training peptides of
    largest predicted effect (`removed`, `predicted`, `actual`, L-BFGS `loo_iterations`,
    `loo_grad_norm`)."""
    prob = head_problem()
    n = len(prob.y_train)
    runs = [train_head(prob.feat_train, prob.y_train, seed=s, weight_decay=weight_decay, maxiter=maxiter) for s in seeds]
    params = runs[0].fit.params
    losses = np.array([np.asarray(head_loss(r.fit.params, prob.feat_test, prob.y_test)) for r in runs])
    hvp = make_hvp(head_loss, params, prob.feat_train, prob.y_train, weight_decay=weight_decay)
    lz = lanczos(hvp, flatten(params)[0].size, jax.random.PRNGKey(2), steps=lanczos_steps)
    ti = int(np.argmax(losses[0]))
    test = (prob.feat_test[ti : ti + 1], prob.y_test[ti : ti + 1])
    g = per_example_grads(head_loss, params, *test)
    sol = conjugate_gradient(hvp, g, maxiter=cg_maxiter)
    predicted = np.asarray(directional_derivatives(head_loss, params, prob.feat_train, prob.y_train, sol.x))[0] / n
    removed = np.argsort(-np.abs(predicted))[:removals]
    actual, its, gns = [], [], []
    for j in removed:
        loo = fit(head_loss, params, prob.feat_train, prob.y_train, weight_decay=weight_decay,
                  weights=removal_weights(n, [j])[0].astype(np.float32), tol=HEAD_SETTINGS["tol"], maxiter=maxiter)
        actual.append(float(head_loss(loo.params, *test)[0]) - losses[0, ti])
        its.append(int(loo.iterations))
        gns.append(float(loo.grad_norm))
    return {
        "theta": np.asarray(flatten(params)[0]), "seeds": np.array(seeds), "test_losses": losses,
        "iterations": np.array([int(r.fit.iterations) for r in runs]),
        "grad_norm": np.array([float(r.fit.grad_norm) for r in runs]),
        "ritz_values": lz.ritz_values[:5], "ritz_bounds": lz.error_bounds[:5], "ritz_top": np.array(lz.ritz_values[-1]),
        "test_index": np.array(ti), "cg_iterations": np.asarray(sol.iterations)[0], "cg_residual": np.asarray(sol.residual)[0],
        "cg_negative_curvature": np.asarray(sol.negative_curvature)[0],
        "removed": removed, "predicted": predicted[removed], "actual": np.array(actual),
        "loo_iterations": np.array(its), "loo_grad_norm": np.array(gns),
        "config_weight_decay": np.array(weight_decay), "config_maxiter": np.array(maxiter),
        "config_command": np.array(command), "config_jax": np.array(jax.__version__),
    }


class HeadStudy(NamedTuple):
    params: Params  # the trained head (seed 0)
    data: dict[str, np.ndarray]  # every array of the file


def load_head_study(path=None, *, name: str = HEAD_FILE) -> HeadStudy:
    """The shipped `influence_head.npz` (`name=WEAK_FILE`: the weak-weight-decay study), or
    the file at `path`, with the head's parameters unflattened into haiku's layout."""
    from helpers import model as model_lib

    path = path or model_lib.pretrained_dir() / name
    with np.load(path) as f:
        d = {k: f[k] for k in f.files}
    template = _head_model().init(jax.random.PRNGKey(0), jnp.zeros((1, 53), jnp.float32))
    _, unravel = flatten(template)
    return HeadStudy(unravel(jnp.asarray(d["theta"])), d)


def main(argv=None) -> None:
    import argparse
    import sys
    import time

    from helpers import model as model_lib

    p = argparse.ArgumentParser(description="Train chapter 9's head to its minimum (two seeds) and save it.")
    p.add_argument("--out", default=None, help="output .npz (default: the shipped file)")
    p.add_argument("--small", action="store_true", help="2 SGD epochs and 20 L-BFGS steps: a smoke test")
    p.add_argument("--weak", action="store_true", help=f"the weak-weight-decay study instead ({WEAK_FILE})")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    command = "python -m helpers.influence" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    if a.weak:
        kw = dict(removals=2, lanczos_steps=5, cg_maxiter=5, maxiter=5) if a.small else {}
        out = weak_study(command=command, **kw)
        out_path = a.out or str(model_lib.pretrained_dir() / WEAK_FILE)
        np.savez_compressed(out_path, **out)
        print(f"weak weight decay: L-BFGS {out['iterations']} steps, {len(out['removed'])} retrainings "
              f"in {time.perf_counter() - t0:.0f} s -> {out_path}")
        return
    settings = {"sgd_epochs": 2, "every": 1, "maxiter": 20} if a.small else {}
    out = head_study(settings=settings, command=command)
    out_path = a.out or str(model_lib.pretrained_dir() / HEAD_FILE)
    np.savez_compressed(out_path, **out)
    print(f"head trained ({int(out['iterations'])} L-BFGS steps, |grad R| {float(out['grad_norm']):.1e}) "
          f"in {time.perf_counter() - t0:.0f} s -> {out_path}")


if __name__ == "__main__":
    main()
