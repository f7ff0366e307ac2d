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

The inverse-HVP solvers (`conjugate_gradient`, `lissa`, `SolveResult`) are in
`helpers.influence_solvers` and importable from here. Eigenvalue tools (power iteration,
Lanczos) are in `helpers.spectrum`; damped influence on the whole CNN in
`helpers.influence_cnn`; chapter 9's shipped studies, run by
`python -m helpers.influence [--weak | --mislabel | --damping | --loo]`, in
`helpers.influence_experiments`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from helpers import validation
from helpers.influence_solvers import Hvp, SolveResult, conjugate_gradient, lbfgs_while, lissa  # noqa: F401 (re-exported)

Params = Any
LossFn = Callable[[Params, jax.Array, jax.Array], jax.Array]  # per-example losses [B]

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
    validation.check_number(weight_decay, "weight_decay", nonnegative=True)


def _check_params(params: Params) -> None:
    if not jax.tree_util.tree_leaves(params):
        raise ValueError("params holds no arrays: pass the model's parameter pytree")
    validation.check_finite_tree(params, "params")


def _check_weights(weights, n: int) -> jax.Array:
    if weights is None:
        return jnp.ones(n)
    w = jnp.asarray(validation.check_finite(validation.as_float_array(weights, "weights"), "weights"))
    if w.ndim not in (1, 2) or w.shape[-1] != n:
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
    _check_params(params)
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
    _check_params(params)
    n = x.shape[0]
    if batch_size is not None:
        validation.check_int(batch_size, "batch_size", minimum=1)
        if not 1 <= batch_size <= n:
            raise ValueError(f"batch_size must be between 1 and N = {n}, got {batch_size}")
    # The data travel as arguments of the compiled product (a `Partial` is a pytree), not as
    # constants it closes over: XLA would otherwise constant-fold products with the [N, ...]
    # inputs while compiling. Solvers here pass `hvp` into their own `jit` the same way.
    return jax.tree_util.Partial(_hvp_program(loss_fn, batch_size), params, x, y, weight_decay)


@functools.lru_cache(maxsize=64)
def _hvp_program(loss_fn: LossFn, batch_size: int | None) -> Callable:
    """The jitted `(params, x, y, weight_decay, v[, key]) -> H v`, one per loss and batch size
    (so a new `make_hvp` on the same loss reuses the compiled program)."""

    def hv(params, x, y, weight_decay, v):
        theta, unravel = flatten(params)
        grad = jax.grad(_objective(loss_fn, unravel, x, y, weight_decay))
        return jax.jvp(lambda t: grad(t, 1.0), (theta,), (v,))[1]

    if batch_size is None:
        return jax.jit(hv)

    @jax.jit
    def hv_sampled(params, x, y, weight_decay, v, key):
        idx = jax.random.choice(key, x.shape[0], (batch_size,), replace=False)
        return hv(params, x[idx], y[idx], weight_decay, v)

    return hv_sampled


def exact_hessian(
    loss_fn: LossFn, params: Params, x, y, *, weight_decay: float = 0.0, max_params: int = MAX_EXACT_PARAMS
) -> jax.Array:
    """The Hessian `[P, P]` of the training objective, for small models only (the check that
    the iterative solvers are right). Refuses more than `max_params` parameters."""
    x, y = check_examples(x, y)
    _check_weight_decay(weight_decay)
    _check_params(params)
    theta, _ = flatten(params)
    if theta.size > max_params:
        raise ValueError(
            f"{theta.size} parameters: the exact Hessian would hold {theta.size ** 2:,} numbers. "
            f"Use Hessian-vector products (make_hvp) with conjugate_gradient or lissa, or "
            f"take the Hessian of a small part of the model (e.g. the last layer)."
        )
    # one compiled program per loss, the data as its arguments (not constants to fold)
    return _hessian_program(params, x, y, weight_decay, loss_fn=loss_fn)


@functools.partial(jax.jit, static_argnames="loss_fn")
def _hessian_program(params: Params, x: jax.Array, y: jax.Array, weight_decay, *, loss_fn: LossFn) -> jax.Array:
    theta, unravel = flatten(params)
    return jax.hessian(_objective(loss_fn, unravel, x, y, weight_decay))(theta, jnp.ones(x.shape[0], theta.dtype))


# ----------------------------------------------------------------------------- solvers

# Conjugate gradients and LiSSA live in helpers.influence_solvers (imported above, re-exported).


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
    validation.check_int(batch_size, "batch_size", minimum=1)
    _check_params(params)
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
    validation.check_int(batch_size, "batch_size", minimum=1)
    _check_params(params)
    theta, _ = flatten(params)
    d = jnp.asarray(validation.check_finite(validation.as_float_array(directions, "directions"), "directions"))
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


def _check_dense_solve(s: jax.Array, name: str) -> None:
    """A dense solve of a singular (H + damping I) returns inf/NaN without an error: refuse it.
    (The relative residual of `influence(solver="exact")` is in its `SolveResult`.)"""
    if not bool(jnp.isfinite(s).all()):
        raise FloatingPointError(
            f"{name}: the dense solve produced NaN or infinite values: the Hessian (+ damping) is "
            "singular (e.g. parameters the loss does not depend on, no weight decay): add damping")


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
    _check_params(params)
    damping = validation.check_number(damping, "damping", nonnegative=True)
    theta, _ = flatten(params)
    n = xtr.shape[0]
    g_test = per_example_grads(loss_fn, params, xte, yte)  # [T, P]
    if solver == "exact":
        h = exact_hessian(loss_fn, params, xtr, ytr, weight_decay=weight_decay)
        a = h + damping * jnp.eye(theta.size, dtype=h.dtype)
        s = jnp.linalg.solve(a, g_test.T).T
        res = jnp.linalg.norm(s @ a - g_test, axis=1) / jnp.linalg.norm(g_test, axis=1)
        _check_dense_solve(s, "influence(solver='exact')")
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
                    "(spectrum.extreme_eigenvalues) or train to a minimum first."
                )
            if not bool((solve.residual <= 100 * tol).all()):  # (NaN never passes)
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
    learning_rates = [validation.check_number(lr, "learning rate") for lr in learning_rates]
    total = 0.0
    for params, lr in zip(checkpoints, learning_rates, strict=True):
        g_test = per_example_grads(loss_fn, params, xte, yte)
        total = total + lr * directional_derivatives(loss_fn, params, xtr, ytr, g_test)
    return total


def self_influence(loss_fn: LossFn, params: Params, x, y, *, weight_decay: float = 0.0,
                   damping: float = 0.0) -> jax.Array:
    """`[N]`: `grad loss_i^T (H + damping I)^-1 grad loss_i` for every training example, with
    the exact Hessian (small models only, see `exact_hessian`). Koh & Liang's self-influence
    is minus this (up-weighting z_i lowers its own loss); a large value marks an example
    the model can only fit by bending towards it, e.g. a wrong label."""
    x, y = check_examples(x, y)
    h = exact_hessian(loss_fn, params, x, y, weight_decay=weight_decay)
    g = per_example_grads(loss_fn, params, x, y)  # [N, P]
    s = jnp.linalg.solve(h + damping * jnp.eye(h.shape[0], dtype=h.dtype), g.T)  # [P, N]
    _check_dense_solve(s, "self_influence")
    return jnp.einsum("np,pn->n", g, s)


def tracin_self(loss_fn: LossFn, checkpoints: Sequence[Params], learning_rates: Sequence[float],
                x, y, *, batch_size: int = 512) -> jax.Array:
    """`[N]`: TracIn self-influence `sum_k lr_k |grad loss_i(theta_k)|^2` (Pruthi et al.
    2020, section 4.1), the diagonal of `tracin(train, train)`, in chunks of `batch_size`."""
    if len(checkpoints) == 0 or len(checkpoints) != len(learning_rates):
        raise ValueError(f"need one learning rate per checkpoint and at least one checkpoint; got "
                         f"{len(checkpoints)} checkpoints and {len(learning_rates)} learning rates")
    x, y = check_examples(x, y)
    total = 0.0
    for params, lr in zip(checkpoints, learning_rates, strict=True):
        sq = [jnp.sum(_grads_chunk(params, x[i : i + batch_size], y[i : i + batch_size], loss_fn=loss_fn) ** 2, axis=1)
              for i in range(0, x.shape[0], batch_size)]
        total = total + lr * jnp.concatenate(sq)
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
def _fit(params, x, y, w, weight_decay, proximal, *, loss_fn, method, tol, maxiter):
    theta0, unravel = flatten(params)
    base = _objective(loss_fn, unravel, x, y, weight_decay)

    def objective(t, wi):  # R, plus the proximal term (proximal / 2) |t - theta0|^2
        return base(t, wi) + 0.5 * proximal * jnp.vdot(t - theta0, t - theta0)
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
        def run(wi):
            return lbfgs_while(lambda t: objective(t, wi), theta0, maxiter=maxiter, tol=tol)

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
    proximal: float = 0.0,
) -> FitResult:
    """Minimises the training objective from `params` (full batch), to a gradient norm `tol`.

    With `proximal` > 0 it minimises `R(theta) + (proximal / 2) |theta - theta_0|^2` instead,
    `theta_0` = `params`: the proximal response that influence with `damping = proximal`
    approximates (Bae et al. 2022), not leave-one-out.

    `weights` `[N]` or `[R, N]` (one fit per row, `vmap`ped): example weights; a leave-one-
    out retraining is a row of ones with a 0 at the removed example. `method` "newton"
    (exact Hessian, for small convex models: converges to machine precision in a few
    steps) or "lbfgs" (optax's L-BFGS with a zoom line search, any size). Under `vmap`
    every row runs as many iterations as the slowest one; for large models a loop over
    rows can be faster. Compiled once per `loss_fn` object and shapes.
    """
    x, y = check_examples(x, y)
    _check_weight_decay(weight_decay)
    if proximal < 0:
        raise ValueError(f"proximal must be >= 0, got {proximal}")
    if method not in ("newton", "lbfgs"):
        raise ValueError(f"unknown method {method!r}: use 'newton' or 'lbfgs'")
    validation.check_number(tol, "tol", positive=True)
    validation.check_int(maxiter, "maxiter", minimum=1)
    _check_params(params)
    theta0, _ = flatten(params)
    if method == "newton" and theta0.size > MAX_EXACT_PARAMS:
        raise ValueError(f"Newton's method forms the {theta0.size}^2 Hessian: use method='lbfgs'")
    w = _check_weights(weights, x.shape[0]).astype(theta0.dtype)
    p, k, gn = _fit(params, x, y, w, weight_decay, proximal, loss_fn=loss_fn, method=method, tol=float(tol), maxiter=int(maxiter))
    return FitResult(p, k, gn)


def removal_weights(n: int, removed) -> np.ndarray:
    """`[R, N]` example weights, row r all ones but a 0 at `removed[r]` (leave-one-out)."""
    removed = np.asarray(removed)
    validation.check_int(n, "n")
    if n < 1:
        raise ValueError("the training set is empty")
    if removed.size and not np.issubdtype(removed.dtype, np.integer):
        raise TypeError(f"removed must hold integer indices, got dtype {removed.dtype}")
    if removed.ndim != 1 or removed.size == 0 or removed.min() < 0 or removed.max() >= n:
        raise ValueError(f"removed must be a non-empty [R] array of indices in [0, {n}), got {removed!r}")
    w = np.ones((removed.size, n))
    w[np.arange(removed.size), removed] = 0.0
    return w


def main(argv=None) -> None:
    """`python -m helpers.influence [--weak | --mislabel | --damping] [--small] [--out F]`:
    the shipped studies of chapter 9, which live in `helpers.influence_experiments`."""
    from helpers import influence_experiments

    influence_experiments.main(argv)


if __name__ == "__main__":
    main()
