"""Exercise checks of chapter 3, integrated gradients: the method and its path rules
(convention: `_common`; the student's function runs on every case before any expected value
is computed)."""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

from helpers import attribution
from helpers import sequences as seqs_lib
from helpers.course.checks._common import CheckFailed, _collect, _hint, _models, _peptides, _rng, _where


def _cubic(weights: np.ndarray, length: int):
    """f(x [B, L, A]) = (w . x / L)^3 [B]: along a straight path its gradient is a quadratic in
    alpha, so each quadrature rule has its own exact value (midpoints with K steps miss the
    integral by 1/(12 K^2) of the alpha^2 term; equal weights on jnp.linspace(0, 1, K) do not)."""
    wj = jnp.asarray(weights / length, jnp.float32)
    return lambda xb: jnp.einsum("bla,a->b", xb, wj) ** 3


def _midpoint_ig(weights: np.ndarray, length: int, x, baseline, steps: int) -> np.ndarray:
    """IG of `_cubic` by the midpoint rule with `steps` points, in float64 (exact)."""
    x, b = np.asarray(x, float), np.asarray(baseline, float)
    w = weights / length
    alphas = (np.arange(steps) + 0.5) / steps
    s = float((b * w).sum()) + alphas * float(((x - b) * w).sum())  # w . path(alpha)
    return (x - b) * w * 3.0 * float(np.mean(s**2))


def _ig_rules(weights, length, x, baseline, steps) -> list[tuple[str, np.ndarray]]:
    """IG of `_cubic` by the rules a student might use instead of `steps` midpoints."""
    x, b = np.asarray(x, float), np.asarray(baseline, float)
    w = weights / length
    s0, ds = float((b * w).sum()), float(((x - b) * w).sum())

    def by(alphas, wts):
        return (x - b) * w * 3.0 * float(np.sum(wts * (s0 + alphas * ds) ** 2))

    k = np.arange(steps)
    out = [("equal weights on jnp.linspace(0, 1, steps), both ends included: that is no quadrature rule (the "
            "chapter warns against it); use the midpoints (k + 1/2) / steps",
            by(np.linspace(0, 1, steps), np.full(steps, 1 / steps))),
           ("the left Riemann rule (k / steps): use the midpoints (k + 1/2) / steps", by(k / steps, np.full(steps, 1 / steps))),
           ("the right Riemann rule ((k + 1) / steps): use the midpoints (k + 1/2) / steps",
            by((k + 1) / steps, np.full(steps, 1 / steps)))]
    for other in (16, 32, 50, 64, 100, 128):
        if other != steps:
            out.append((f"the midpoint rule with {other} points, not the `steps` = {steps} you were given",
                        _midpoint_ig(weights, length, x, baseline, other)))
    return out


def check_integrated_gradients(student: Callable, *, steps: int = 64, seed: int | None = None) -> str:
    """`student(f, x [L, A], baseline [L, A], steps) -> attributions [L, A]` by the midpoint
    rule with `steps` points.

    Cases: a linear model from the zero baseline and from a random non-zero baseline, where
    IG is exactly (x - baseline) x gradient; a cubic model with few steps (4, or 3 to 8 for a
    grading seed), where the midpoint rule has a known exact value that another rule or
    step count misses; the course CNN from the padding baseline, where the attributions must
    add up to f(x) - f(baseline) (completeness) and agree with `attribution.integrated_gradients`
    (off limits while yours runs)."""
    linear, weights, cnn = _models(seed)
    peptides = _peptides(seed)
    rng = _rng(seed, 5)
    few = 4 if seed is None else int(rng.integers(3, 9))
    xs = [jnp.asarray(seqs_lib.encode(seq)) for seq in peptides]
    pads = [attribution.make_baseline("padding", x) for x in xs]
    bases = [jnp.asarray(rng.uniform(0.0, 0.3, x.shape), jnp.float32) for x in xs]  # a non-zero baseline
    cubic = _cubic(weights, xs[0].shape[0])
    calls = [c for x, pad, base in zip(xs, pads, bases, strict=True)
             for c in ((linear, x, jnp.zeros_like(x), steps), (linear, x, base, steps), (cubic, x, base, few),
                       (cnn, x, pad, steps))]
    outs = _collect(student, calls, what="your integrated gradients",
                    forbidden=(attribution.integrated_gradients, attribution.expected_gradients))
    worst_gap = 0.0
    for k, seq in enumerate(peptides):
        x, pad, base = xs[k], pads[k], bases[k]
        a_lin, a_base, a_cub, a = outs[4 * k : 4 * k + 4]
        for got in (a_lin, a_base, a_cub, a):
            if got.shape != x.shape:
                raise CheckFailed(f"your attributions have shape {got.shape}; they must have the input's shape {tuple(x.shape)} [L, A]")
        for got, b, name in ((a_lin, np.zeros(x.shape), "the zero baseline"), (a_base, np.asarray(base, float),
                                                                              "a random non-zero baseline")):
            want = (np.asarray(x, float) - b) * weights
            diff = got - want
            if np.abs(diff).max() > 1e-4 * max(1.0, np.abs(want).max()):
                hint = _hint(got, want) or ": check the (x - baseline) factor"
                raise CheckFailed(
                    f"on a linear model from {name} IG is exactly (x - baseline) x gradient, but yours differs by "
                    f"{np.abs(diff).max():.3g} at {_where(diff, seq)}{hint}")
        want = _midpoint_ig(weights, x.shape[0], x, base, few)
        diff = a_cub - want
        if np.abs(diff).max() > 2e-3 * np.abs(want).max():
            named = [why for err, why in sorted((float(np.abs(a_cub - other).max()), why)
                                                for why, other in _ig_rules(weights, x.shape[0], x, base, few))
                     if err <= 2e-3 * np.abs(want).max()]
            hint = f": yours matches {named[0]}" if named else (_hint(a_cub, want) or
                                                                ": use the midpoints (k + 1/2) / steps, each weighted 1 / steps")
            raise CheckFailed(
                f"on a cubic model with steps = {few} the midpoint rule has an exact value, and yours is off by "
                f"{np.abs(diff).max() / np.abs(want).max():.2%} of the largest attribution{hint}")
        fx, fb = np.asarray(cnn(jnp.stack([x, pad])), dtype=float)
        delta = fx - fb
        gap = float(a.sum()) - delta
        worst_gap = max(worst_gap, abs(gap))
        if abs(gap) > 0.05 * max(1.0, abs(delta)):
            raise CheckFailed(
                f"your IG does not satisfy completeness on the course CNN and {seq}: its sum misses "
                f"f(x) - f(baseline) by {abs(gap):.2f} ({abs(gap) / max(abs(delta), 1e-12):.0%}); check the quadrature "
                "weights (they must sum to 1) and that the path runs from the baseline to x")
        ref = np.asarray(attribution.integrated_gradients(cnn, x, pad, steps=steps).attributions)
        diff = a - ref
        if np.abs(diff).max() > 0.05 * np.abs(ref).max() + 1e-3:
            raise CheckFailed(
                f"on the course CNN your attributions are off by {np.abs(diff).max() / np.abs(ref).max():.0%} of the "
                f"largest attribution at {_where(diff, seq)} (5% allowed): use {steps} midpoints of [0, 1]")
    return f"integrated gradients: all {4 * len(peptides)} cases pass (largest completeness gap {worst_gap:.2g})"


def check_path_rule(student: Callable, *, seed: int | None = None) -> str:
    """`student(steps, rule) -> (alphas [K], weights [K])` for rule in left, right,
    midpoint, trapezoid, against `attribution.path_rule` (off limits while yours runs);
    also: the weights integrate 1 (every rule)."""
    rng = _rng(seed)
    counts = (1, 4, 64) if seed is None else (1, int(rng.integers(2, 10)), int(rng.integers(20, 100)))
    calls = [(steps, rule) for rule in attribution.RULES for steps in counts]
    outs = _collect(student, calls, what="your path rule", forbidden=(attribution.path_rule,), raw=True)
    for (steps, rule), out in zip(calls, outs, strict=True):
        if not (isinstance(out, tuple | list) and len(out) == 2):
            raise CheckFailed(f"return a pair (alphas, weights) for the {rule} rule; got {type(out).__name__}")
        alphas, weights = (np.asarray(v, dtype=float) for v in out)
        ref_a, ref_w = (np.asarray(v, dtype=float) for v in attribution.path_rule(steps, rule))
        if alphas.shape != ref_a.shape or weights.shape != ref_w.shape:
            raise CheckFailed(f"the {rule} rule with {steps} steps has the wrong number of points: yours has "
                              f"{alphas.shape} alphas and {weights.shape} weights")
        if abs(weights.sum() - 1.0) > 1e-6:
            raise CheckFailed(f"your {rule} weights for {steps} steps sum to {weights.sum():.4f}; the weights of a "
                              "quadrature rule on [0, 1] must sum to 1 (else IG misses completeness by that factor)")
        got = np.stack([alphas, weights], 1)[np.argsort(alphas)]
        want = np.stack([ref_a, ref_w], 1)[np.argsort(ref_a)]
        if np.abs(got[:, 0] - want[:, 0]).max() > 1e-6:
            raise CheckFailed(f"your {rule} rule with {steps} steps puts its points in the wrong places (off by up to "
                              f"{np.abs(got[:, 0] - want[:, 0]).max():.3g}): left ends, right ends, midpoints of the "
                              "steps equal pieces of [0, 1], or (trapezoid) all steps + 1 end points")
        if np.abs(got[:, 1] - want[:, 1]).max() > 1e-6:
            raise CheckFailed(f"your {rule} rule with {steps} steps has the right points but wrong weights (off by up "
                              f"to {np.abs(got[:, 1] - want[:, 1]).max():.3g}): the trapezoid halves the two end weights")
    return f"path rules: all {len(attribution.RULES)} rules pass for {', '.join(map(str, counts))} steps"
