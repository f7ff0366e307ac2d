"""Exercise checks of chapter 2, gradients: finite differences and gradient x input
(convention: `_common`; the student's function runs on every case before any expected value
is computed)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from helpers import attribution
from helpers import sequences as seqs_lib
from helpers.course.checks._common import CheckFailed, _collect, _models, _peptides, _rng, _where


def check_finite_differences(student: Callable, *, eps: float = 1e-2, seed: int | None = None) -> str:
    """`student(f, x [L, A], eps) -> [L, A]`: the central difference (f(x + eps e) -
    f(x - eps e)) / (2 eps) for every entry e, in batched calls. Cases: the linear model
    (exact) and a smooth nonlinear model (sum over positions of tanh units), against
    `jax.grad`. (Not the CNN: its max-pooling has kinks, where a difference quotient
    straddling one averages two slopes, a lesson of its own.)"""
    linear, _, _ = _models(seed)
    k0 = 0 if seed is None else int(_rng(seed, 3).integers(1, 2**31))
    w = jax.random.normal(jax.random.PRNGKey(k0), (seqs_lib.NUM_CHANNELS, 8))
    u = jax.random.normal(jax.random.PRNGKey(k0 + 1), (8,))
    smooth = jax.jit(lambda xb: jnp.tanh(xb @ w).sum(axis=1) @ u)
    peptides = _peptides(seed)[1:]
    cases = [(model, jnp.asarray(seqs_lib.encode(seq, length=len(seq) + 2)), seq, name, tol)
             for seq in peptides
             for model, name, tol in ((linear, "the linear model", 1e-3), (smooth, "a smooth nonlinear model", 2e-3))]
    outs = _collect(student, [(m, x, eps) for m, x, *_ in cases], what="your finite differences",
                    forbidden=(jax.grad, jax.value_and_grad, jax.vjp, jax.jacrev, jax.jacfwd))
    for (model, x, seq, name, tol), got in zip(cases, outs, strict=True):
        if got.shape != x.shape:
            raise CheckFailed(f"one difference per entry of x: expected shape {tuple(x.shape)} [L, A], got {got.shape}")
        diff = got - np.asarray(jax.grad(lambda z, model=model: model(z[None])[0])(x))
        if np.abs(diff).max() > tol:
            hint = ("on a linear model every difference quotient is exact: is it divided by 2 eps?" if model is linear
                    else "a one-sided difference (f(x + eps e) - f(x)) / eps has an O(eps) error; use the central one")
            raise CheckFailed(f"on {name} your differences miss the gradient by {np.abs(diff).max():.2g} at "
                              f"{_where(diff, seq)}: {hint}")
    return f"finite differences: all {len(cases)} cases pass (they match jax.grad)"


def check_gradient_x_input(student: Callable, *, seed: int | None = None) -> str:
    """`student(f, x [L, A]) -> gradient x input [L, A]`. Cases: a linear model, where it is
    x times the weights, and the course CNN against `attribution.gradient_x_input` (off
    limits while yours runs)."""
    linear, weights, cnn = _models(seed)
    peptides = _peptides(seed)
    xs = [jnp.asarray(seqs_lib.encode(seq)) for seq in peptides]
    calls = [(model, x) for x in xs for model in (linear, cnn)]
    outs = _collect(student, calls, what="your gradient x input",
                    forbidden=(attribution.gradient_x_input, attribution.saliency))
    for k, seq in enumerate(peptides):
        x, a, b = xs[k], outs[2 * k], outs[2 * k + 1]
        for got in (a, b):
            if got.shape != x.shape:
                raise CheckFailed(f"your attributions have shape {got.shape}; they must have the input's shape {tuple(x.shape)} [L, A]")
        diff = a - np.asarray(x) * weights
        if np.abs(diff).max() > 1e-5:
            raise CheckFailed(f"on a linear model gradient x input is x times the weights, but yours differs by "
                              f"{np.abs(diff).max():.3g} at {_where(diff, seq)}")
        ref = np.asarray(attribution.gradient_x_input(cnn, x))
        diff = b - ref
        if np.abs(diff).max() > 1e-4 * max(1.0, np.abs(ref).max()):
            raise CheckFailed(f"on the course CNN yours is off by {np.abs(diff).max():.3g} at "
                              f"{_where(diff, seq)}: is the gradient taken of the logit of this one peptide?")
    return f"gradient x input: all {2 * len(peptides)} cases pass"
