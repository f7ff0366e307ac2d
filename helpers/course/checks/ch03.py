"""Exercise checks of chapter 3, integrated gradients: the method and its path rules
(convention: `_common`; the student's function runs on every case before any expected value
is computed)."""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

from helpers import attribution
from helpers import sequences as seqs_lib
from helpers.course.checks._common import CheckFailed, _collect, _models, _peptides, _rng, _where


def check_integrated_gradients(student: Callable, *, steps: int = 64, seed: int | None = None) -> str:
    """`student(f, x [L, A], baseline [L, A], steps) -> attributions [L, A]`.

    Cases: a linear model, where IG is exactly (x - baseline) x gradient; the course CNN
    from the padding baseline, where the attributions must add up to f(x) - f(baseline)
    (completeness) and agree with `attribution.integrated_gradients` (off limits while
    yours runs)."""
    linear, weights, cnn = _models(seed)
    peptides = _peptides(seed)
    xs = [jnp.asarray(seqs_lib.encode(seq)) for seq in peptides]
    pads = [attribution.make_baseline("padding", x) for x in xs]
    calls = [c for x, pad in zip(xs, pads, strict=True) for c in ((linear, x, jnp.zeros_like(x), steps), (cnn, x, pad, steps))]
    outs = _collect(student, calls, what="your integrated gradients",
                    forbidden=(attribution.integrated_gradients, attribution.expected_gradients))
    worst_gap = 0.0
    for k, seq in enumerate(peptides):
        x, pad, a_lin, a = xs[k], pads[k], outs[2 * k], outs[2 * k + 1]
        for got in (a_lin, a):
            if got.shape != x.shape:
                raise CheckFailed(f"your attributions have shape {got.shape}; they must have the input's shape {tuple(x.shape)} [L, A]")
        diff = a_lin - np.asarray(x) * weights
        if np.abs(diff).max() > 1e-4:
            raise CheckFailed(
                f"on a linear model IG is exactly (x - baseline) x gradient, but yours differs by "
                f"{np.abs(diff).max():.3g} at {_where(diff, seq)}: check the (x - baseline) factor")
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
    return f"integrated gradients: all {2 * len(peptides)} cases pass (largest completeness gap {worst_gap:.2g})"


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
