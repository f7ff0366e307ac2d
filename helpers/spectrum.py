"""Extreme eigenvalues of a symmetric matrix known only through products `hvp(v[P]) -> [P]`
(a Hessian, in chapter 9): power iteration and Lanczos. Split out of `helpers.influence`.

Shape glossary: P the dimension (parameters, flattened), K Lanczos steps.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from helpers import validation
from helpers.influence_solvers import _as_pytree, check_loop

Hvp = Callable[[jax.Array], jax.Array]  # hvp(v[P]) -> [P]


def extreme_eigenvalues(hvp: Hvp, dim: int, key: jax.Array, *, iters: int = 100) -> tuple[float, float]:
    """`(largest, smallest)` eigenvalue of H by power iteration with `hvp(v[dim])`.

    The largest (in magnitude) from H, then the smallest from the shifted matrix
    `largest I - H`. A negative smallest value means the objective is not convex there
    and H^-1 is not a meaningful quadratic model: use damping above its magnitude.
    """
    validation.check_callable(hvp, "hvp")
    validation.check_int(dim, "dim", minimum=1)
    validation.check_int(iters, "iters", minimum=1)
    validation.check_key(key)

    # one compiled program for the two runs; `hvp` is its argument (a `make_hvp` product
    # carries its data into it, and the program compiles once per dimension and iterations)
    top, shifted = _power_program(_as_pytree(hvp), *jax.random.split(key), dim=dim, iters=iters)
    if not bool(jnp.isfinite(top) & jnp.isfinite(shifted)):
        raise FloatingPointError("power iteration produced NaN or infinity: hvp returned non-finite products")
    return float(top), float(top - shifted)


@functools.partial(jax.jit, static_argnames=("dim", "iters"))
def _power_program(hvp: Hvp, k1: jax.Array, k2: jax.Array, *, dim: int, iters: int) -> tuple[jax.Array, jax.Array]:
    def power(matvec, v):
        def body(v, _):
            w = matvec(v)
            return w / jnp.linalg.norm(w), None

        v, _ = jax.lax.scan(body, v / jnp.linalg.norm(v), None, length=iters)
        return jnp.vdot(v, matvec(v))

    top = power(hvp, jax.random.normal(k1, (dim,)))
    return top, power(lambda v: top * v - hvp(v), jax.random.normal(k2, (dim,)))


class LanczosResult(NamedTuple):
    ritz_values: np.ndarray  # [K]: eigenvalues of the K x K tridiagonal matrix, ascending
    error_bounds: np.ndarray  # [K]: each Ritz value has an eigenvalue of H within this distance
    steps: int  # K, the number of Hessian-vector products used


def lanczos(hvp: Hvp, dim: int, key: jax.Array, *, steps: int = 50, loop: str = "device") -> LanczosResult:
    """The extreme eigenvalues of a symmetric H from `steps` products `hvp(v[dim])`.

    Lanczos builds an orthonormal basis Q of the Krylov space {v, Hv, ..., H^(K-1) v}
    (re-orthogonalised against every earlier vector, which float32 needs) in which H is
    the tridiagonal T = Q^T H Q; the eigenvalues of T, the Ritz values, approximate the
    extreme eigenvalues of H far faster than power iteration (Golub & Van Loan,
    *Matrix Computations*, ch. 10). Each Ritz value theta with eigenvector s of T has an
    eigenvalue of H within |beta_K s_K|, its `error_bounds` entry. The smallest Ritz value
    is never below the smallest eigenvalue of H (it is a Rayleigh quotient): a negative one
    proves negative curvature, a positive one only fails to find any. `loop`: 'device' (one
    compiled `scan`) or 'host' (one compiled step repeated from Python, the same arithmetic;
    `influence_solvers.check_loop`).
    """
    validation.check_callable(hvp, "hvp")
    validation.check_int(dim, "dim", minimum=1)
    validation.check_int(steps, "steps", minimum=1)
    validation.check_key(key)
    check_loop(loop)
    if dim < 1 or not 1 <= steps <= dim:
        raise ValueError(f"need dim >= 1 and 1 <= steps <= dim, got dim={dim}, steps={steps}")
    v0 = jax.random.normal(key, (dim,))
    q0 = v0 / jnp.linalg.norm(v0)

    if loop == "device":
        _, alphas, betas = _lanczos_program(_as_pytree(hvp), q0, steps=steps)
    else:
        c = _lanczos_init(q0, steps)
        for j in range(steps):
            c = _lanczos_host_step(_as_pytree(hvp), c, jnp.asarray(j))
        _, alphas, betas = c
    a, b = np.asarray(alphas, np.float64), np.asarray(betas, np.float64)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise FloatingPointError("Lanczos produced NaN or infinity: hvp returned non-finite products")
    t = np.diag(a) + np.diag(b[:-1], 1) + np.diag(b[:-1], -1)
    theta, s = np.linalg.eigh(t)
    return LanczosResult(theta, np.abs(b[-1] * s[-1]), steps)


def _lanczos_init(q0: jax.Array, steps: int):
    basis = jnp.zeros((steps + 1, q0.shape[0]), q0.dtype).at[0].set(q0)
    return basis, jnp.zeros(steps, q0.dtype), jnp.zeros(steps, q0.dtype)


def _lanczos_iteration(hvp: Hvp, c, j):
    """Lanczos step j, shared by the device and the host loop: the carry is (basis [K+1, P],
    alphas [K], betas [K]), rows and entries after j still zero."""
    basis, alphas, betas = c
    q = basis[j]
    w = hvp(q)
    alpha = jnp.vdot(q, w)
    # Gram-Schmidt against every vector so far, twice (rows after j are still zero).
    w = w - basis.T @ (basis @ w)
    w = w - basis.T @ (basis @ w)
    beta = jnp.linalg.norm(w)
    nxt = jnp.where(beta > 0, w / jnp.where(beta > 0, beta, 1.0), 0.0)
    return basis.at[j + 1].set(nxt), alphas.at[j].set(alpha), betas.at[j].set(beta)


_lanczos_host_step = jax.jit(_lanczos_iteration)


@functools.partial(jax.jit, static_argnames="steps")
def _lanczos_program(hvp: Hvp, q0: jax.Array, *, steps: int):
    def body(c, j):
        return _lanczos_iteration(hvp, c, j), None

    return jax.lax.scan(body, _lanczos_init(q0, steps), jnp.arange(steps))[0]
