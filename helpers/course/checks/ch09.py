"""Exercise checks of chapter 9, influence functions: Hessian-vector products and conjugate gradients (convention: `_common`)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from helpers.course.checks._common import CheckFailed, _run


def _logistic_problem(seed: int, n: int = 50, p: int = 6):
    """A small L2-regularised logistic regression loss `loss(theta [p + 1])` on random data."""
    kx, ky = jax.random.split(jax.random.PRNGKey(seed))
    x = jax.random.normal(kx, (n, p))
    y = (jax.random.uniform(ky, (n,)) < 0.5).astype(jnp.float32)

    def loss(theta):
        z = x @ theta[:p] + theta[p]
        return jnp.mean(jax.nn.softplus(z) - y * z) + 0.5e-2 * jnp.sum(theta[:p] ** 2)

    return loss


def check_hvp(student: Callable) -> str:
    """`student(loss, theta [P], v [P]) -> H v`, H the Hessian of the scalar `loss` at theta,
    without forming H. Cases: quadratics 0.5 theta^T A theta (H v = A v exactly) and
    logistic-regression losses against `jax.hessian`."""
    rng = np.random.default_rng(0)
    for k in range(3):
        p = 4 + 3 * k
        m = rng.normal(size=(p, p))
        a = jnp.asarray(m @ m.T + np.eye(p), jnp.float32)
        theta, v = (jnp.asarray(rng.normal(size=p), jnp.float32) for _ in range(2))
        got = _run(student, lambda t, a=a: 0.5 * t @ a @ t, theta, v, what="your Hessian-vector product")
        want = np.asarray(a @ v)
        if got.shape != want.shape:
            raise CheckFailed(f"H v has the parameters' shape ({p},); yours has {got.shape}")
        if np.abs(got - want).max() > 1e-3 * max(1.0, np.abs(want).max()):
            raise CheckFailed(f"for the quadratic 0.5 theta^T A theta (H = A, {p} parameters) your H v is off by "
                              f"{np.abs(got - want).max():.3g}: differentiate the gradient along v (jax.jvp of jax.grad)")
        loss = _logistic_problem(k)
        theta, v = (jnp.asarray(rng.normal(size=7), jnp.float32) for _ in range(2))
        got = _run(student, loss, theta, v, what="your Hessian-vector product")
        want = np.asarray(jax.hessian(loss)(theta) @ v)
        if np.abs(got - want).max() > 1e-3 * max(1.0, np.abs(want).max()):
            raise CheckFailed(f"for a logistic-regression loss your H v is off by {np.abs(got - want).max():.3g} "
                              f"(largest entry {np.abs(want).max():.3g})")
    return "Hessian-vector products: all 6 cases pass"


def check_conjugate_gradient(student: Callable) -> str:
    """`student(matvec, b [P], tol, maxiter) -> x [P]` solving A x = b for symmetric
    positive definite A, given only `matvec(v) = A v`. Cases: the identity, random SPD
    matrices, and a 300-dimensional matrix with 5 distinct eigenvalues, which CG solves in
    5 steps: more than maxiter + 1 = 31 matrix-vector products there means the matrix
    was built column by column, not solved by CG."""
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(300, 300)))
    clustered = (q * np.repeat([1.0, 2.0, 5.0, 10.0, 50.0], 60)) @ q.T
    cases = [(np.eye(5), 100, "the identity"), (None, 100, "a random 20 x 20 SPD matrix (condition number 100)"),
             (clustered, 30, "a 300 x 300 matrix with 5 distinct eigenvalues")]
    for a, maxiter, name in cases:
        if a is None:
            u, _ = np.linalg.qr(rng.normal(size=(20, 20)))
            a = (u * np.geomspace(1, 100, 20)) @ u.T
        a = jnp.asarray(a, jnp.float32)
        b = jnp.asarray(rng.normal(size=a.shape[0]), jnp.float32)
        calls = [0]

        def matvec(v, a=a, calls=calls):
            calls[0] += 1
            return a @ v

        got = _run(student, matvec, b, 1e-5, maxiter, what="your conjugate gradients")
        if got.shape != b.shape:
            raise CheckFailed(f"for {name} x must have b's shape {b.shape}; yours has {got.shape}")
        residual = float(np.linalg.norm(np.asarray(a @ jnp.asarray(got, jnp.float32) - b)) / np.linalg.norm(np.asarray(b)))
        if residual > 1e-4:
            raise CheckFailed(f"for {name} your x leaves a relative residual |A x - b| / |b| = {residual:.2g} "
                              "(asked for 1e-5): check the step alpha = r.r / p.Ap and the direction update p = r + beta p")
        if calls[0] > maxiter + 1:
            raise CheckFailed(f"for {name} you called matvec {calls[0]} times with maxiter = {maxiter}: CG needs one "
                              "product per iteration (plus one for a final residual), never the whole matrix")
    return "conjugate gradients: all 3 systems pass (solved to 1e-4)"
