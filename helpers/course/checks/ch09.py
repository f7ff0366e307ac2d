"""Exercise checks of chapter 9, influence functions: Hessian-vector products and conjugate
gradients (convention: `_common`; the student's function runs on every case before any
expected value is computed)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from helpers.course.checks._common import CheckFailed, _collect, _rng


def _logistic_problem(seed: int, n: int = 50, p: int = 6):
    """A small L2-regularised logistic regression loss `loss(theta [p + 1])` on random data."""
    rng = np.random.default_rng(seed)  # numpy, not jax.random: no compilations before the check
    x = jnp.asarray(rng.normal(size=(n, p)), jnp.float32)
    y = jnp.asarray(rng.uniform(size=n) < 0.5, jnp.float32)

    def loss(theta):
        z = x @ theta[:p] + theta[p]
        return jnp.mean(jax.nn.softplus(z) - y * z) + 0.5e-2 * jnp.sum(theta[:p] ** 2)

    return loss


def check_hvp(student: Callable, *, seed: int | None = None) -> str:
    """`student(loss, theta [P], v [P]) -> H v`, H the Hessian of the scalar `loss` at theta,
    without forming H (`jax.hessian`, `jax.jacfwd`, `jax.jacrev` and the course's
    `influence.make_hvp` / `exact_hessian` are off limits while yours runs). Cases:
    quadratics 0.5 theta^T A theta (H v = A v exactly) and logistic-regression losses
    against `jax.hessian`."""
    from helpers import influence

    rng = _rng(seed)
    k0 = 0 if seed is None else int(rng.integers(1, 2**20))
    cases = []
    for k in range(3):
        p = 4 + 3 * k
        m = rng.normal(size=(p, p))
        a = jnp.asarray(m @ m.T + np.eye(p), jnp.float32)
        theta, v = (jnp.asarray(rng.normal(size=p), jnp.float32) for _ in range(2))
        cases.append((lambda t, a=a: 0.5 * t @ a @ t, theta, v, f"the quadratic 0.5 theta^T A theta (H = A, {p} parameters)"))
        theta, v = (jnp.asarray(rng.normal(size=7), jnp.float32) for _ in range(2))
        cases.append((_logistic_problem(k0 + k), theta, v, "a logistic-regression loss"))
    outs = _collect(student, [c[:3] for c in cases], what="your Hessian-vector product",
                    forbidden=(jax.hessian, jax.jacfwd, jax.jacrev, influence.make_hvp, influence.exact_hessian))
    for (loss, theta, v, name), got in zip(cases, outs, strict=True):
        want = np.asarray(jax.jit(jax.hessian(loss))(theta) @ v)  # one compilation, not one per operation
        if got.shape != want.shape:
            raise CheckFailed(f"H v has the parameters' shape {want.shape}; yours has {got.shape}")
        if np.abs(got - want).max() > 1e-3 * max(1.0, np.abs(want).max()):
            raise CheckFailed(f"for {name} your H v is off by {np.abs(got - want).max():.3g}: differentiate the "
                              "gradient along v (jax.jvp of jax.grad)")
    return f"Hessian-vector products: all {len(cases)} cases pass"


def _counted_matvec(a: jax.Array) -> tuple[Callable, dict]:
    """`matvec(v [P]) = A v` that counts its calls and refuses traced (vmap, jit) inputs,
    which would hide how many products are taken, and its counter `{"calls": n}`. The matrix
    lives in the closure, not in an attribute a submission could read and hand to a solver."""
    count = {"calls": 0}
    size = a.shape[:1]

    def matvec(v):
        if isinstance(v, jax.core.Tracer):
            raise CheckFailed("call matvec on one concrete vector at a time (not under jax.vmap or jax.jit), "
                              "so that its products can be counted: CG needs one per iteration")
        v = jnp.asarray(v)
        if v.shape != size:
            raise CheckFailed(f"matvec takes one vector of shape {size}; you passed shape {v.shape}")
        count["calls"] += 1
        return a @ v

    return matvec, count


def check_conjugate_gradient(student: Callable, *, seed: int | None = None) -> str:
    """`student(matvec, b [P], tol, maxiter) -> x [P]` solving A x = b for symmetric
    positive definite A, given only `matvec(v) = A v`. Cases: the identity, random SPD
    matrices, and a 300-dimensional matrix with 5 distinct eigenvalues, which CG solves in
    5 steps: more than maxiter + 1 = 31 matrix-vector products there means the matrix
    was built column by column, not solved by CG. Library solvers (`jax.scipy` and
    `scipy.sparse.linalg` cg, `numpy`/`jax.numpy`/`scipy` `linalg` solve, inv, lstsq, pinv, cho_solve) and the course's
    `influence.conjugate_gradient` are off limits while yours runs."""
    import scipy.linalg
    import scipy.sparse.linalg
    from jax.scipy.sparse import linalg as jsl

    from helpers import influence

    rng = _rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(300, 300)))
    levels = [1.0, 2.0, 5.0, 10.0, 50.0] if seed is None else sorted(rng.uniform(1, 60, 5))
    clustered = (q * np.repeat(levels, 60)) @ q.T
    specs = [(np.eye(5), 100, "the identity"), (None, 100, "a random 20 x 20 SPD matrix (condition number 100)"),
             (clustered, 30, "a 300 x 300 matrix with 5 distinct eigenvalues")]
    cases = []
    for a, maxiter, name in specs:
        if a is None:
            u, _ = np.linalg.qr(rng.normal(size=(20, 20)))
            a = (u * np.geomspace(1, 100, 20)) @ u.T
        a = jnp.asarray(a, jnp.float32)
        b = jnp.asarray(rng.normal(size=a.shape[0]), jnp.float32)
        matvec, count = _counted_matvec(a)
        cases.append((matvec, b, 1e-5, maxiter, a, name, count))
    forbidden = (jsl.cg, jsl.gmres, jsl.bicgstab, scipy.sparse.linalg.cg, scipy.sparse.linalg.gmres,
                 scipy.sparse.linalg.minres, scipy.linalg.solve, scipy.linalg.lstsq, scipy.linalg.cho_solve,
                 scipy.linalg.inv, scipy.linalg.pinv, np.linalg.solve, np.linalg.inv, np.linalg.lstsq, np.linalg.pinv,
                 jnp.linalg.solve, jnp.linalg.inv, jnp.linalg.lstsq, jnp.linalg.pinv, influence.conjugate_gradient)
    jax.clear_caches()  # a forbidden solver jitted and warmed up before the check runs afresh, through the guard
    outs = _collect(student, [c[:4] for c in cases], what="your conjugate gradients",
                    forbidden=tuple(f for f in forbidden if hasattr(f, "__code__") or hasattr(f, "__wrapped__")))
    for (_, b, _, maxiter, a, name, count), got in zip(cases, outs, strict=True):
        if got.shape != b.shape:
            raise CheckFailed(f"for {name} x must have b's shape {b.shape}; yours has {got.shape}")
        residual = float(np.linalg.norm(np.asarray(a @ jnp.asarray(got, jnp.float32) - b)) / np.linalg.norm(np.asarray(b)))
        if residual > 1e-4:
            if count["calls"] < min(maxiter, 5):  # stopped early: the 5-eigenvalue system needs 5 products
                raise CheckFailed(f"for {name} your x leaves a relative residual |A x - b| / |b| = {residual:.2g} after "
                                  f"only {count['calls']} products: a wrong stopping rule; stop when |r| <= tol |b| "
                                  "(or after maxiter steps), not on the first small step or before the residual is checked")
            raise CheckFailed(f"for {name} your x leaves a relative residual |A x - b| / |b| = {residual:.2g} "
                              "(asked for 1e-5): check the step alpha = r.r / p.Ap and the direction update p = r + beta p")
        if count["calls"] > maxiter + 1:
            raise CheckFailed(f"for {name} you called matvec {count['calls']} times with maxiter = {maxiter}: CG needs one "
                              "product per iteration (plus one for a final residual), never the whole matrix")
    return "conjugate gradients: all 3 systems pass (solved to 1e-4)"
