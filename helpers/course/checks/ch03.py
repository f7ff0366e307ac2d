"""Exercise checks of chapter 3, integrated gradients: the method and its path rules (convention: `_common`)."""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

from helpers import attribution
from helpers import sequences as seqs_lib
from helpers.course.checks._common import PEPTIDES, CheckFailed, _models, _run, _stub_or, _where


def check_integrated_gradients(student: Callable, *, steps: int = 64) -> str:
    """`student(f, x [L, A], baseline [L, A], steps) -> attributions [L, A]`.

    Cases: a linear model, where IG is exactly (x - baseline) x gradient; the course CNN
    from the padding baseline, where the attributions must add up to f(x) - f(baseline)
    (completeness) and agree with `attribution.integrated_gradients`."""
    linear, weights, cnn = _models()
    worst_gap = 0.0
    for seq in PEPTIDES:
        x = jnp.asarray(seqs_lib.encode(seq))
        zero = jnp.zeros_like(x)
        a = _run(student, linear, x, zero, steps, what="your integrated gradients")
        if a.shape != x.shape:
            raise CheckFailed(f"your attributions have shape {a.shape}; they must have the input's shape {tuple(x.shape)} [L, A]")
        diff = a - np.asarray(x) * weights
        if np.abs(diff).max() > 1e-4:
            raise CheckFailed(
                f"on a linear model IG is exactly (x - baseline) x gradient, but yours differs by "
                f"{np.abs(diff).max():.3g} at {_where(diff, seq)}: check the (x - baseline) factor")
        pad = attribution.make_baseline("padding", x)
        a = _run(student, cnn, x, pad, steps, what="your integrated gradients")
        fx, fb = np.asarray(cnn(jnp.stack([x, pad])), dtype=float)
        delta = fx - fb
        gap = float(a.sum()) - delta
        worst_gap = max(worst_gap, abs(gap))
        if abs(gap) > 0.05 * max(1.0, abs(delta)):
            raise CheckFailed(
                f"your IG does not satisfy completeness: gap {gap:.2f} on peptide {seq} "
                f"(f(x) - f(baseline) = {delta:.2f}); check the quadrature weights (they must sum to 1) "
                f"and that the path runs from the baseline to x")
        ref = np.asarray(attribution.integrated_gradients(cnn, x, pad, steps=steps).attributions)
        diff = a - ref
        if np.abs(diff).max() > 0.05 * np.abs(ref).max() + 1e-3:
            raise CheckFailed(
                f"your attributions differ from the reference by {np.abs(diff).max():.3g} at "
                f"{_where(diff, seq)} (the largest reference value is {np.abs(ref).max():.3g})")
    return f"integrated gradients: all {2 * len(PEPTIDES)} cases pass (largest completeness gap {worst_gap:.2g})"


def check_path_rule(student: Callable) -> str:
    """`student(steps, rule) -> (alphas [K], weights [K])` for rule in left, right,
    midpoint, trapezoid, against `attribution.path_rule`; also: the weights integrate
    1 and alpha exactly (every rule) and alpha^2 within its error bound."""
    for rule in attribution.RULES:
        for steps in (1, 4, 64):
            out = _stub_or(student, steps, rule, what="your path rule")
            alphas, weights = (np.asarray(v, dtype=float) for v in out)
            ref_a, ref_w = (np.asarray(v, dtype=float) for v in attribution.path_rule(steps, rule))
            if alphas.shape != ref_a.shape or weights.shape != ref_w.shape:
                raise CheckFailed(f"the {rule} rule with {steps} steps has {len(ref_a)} points; yours has "
                                  f"{alphas.shape} alphas and {weights.shape} weights")
            if abs(weights.sum() - 1.0) > 1e-6:
                raise CheckFailed(f"your {rule} weights for {steps} steps sum to {weights.sum():.4f}; the weights of a "
                                  "quadrature rule on [0, 1] must sum to 1 (else IG misses completeness by that factor)")
            order = np.argsort(ref_a)
            got = np.stack([alphas, weights], 1)[np.argsort(alphas)]
            if np.abs(got - np.stack([ref_a, ref_w], 1)[order]).max() > 1e-6:
                raise CheckFailed(f"your {rule} rule with {steps} steps puts points {np.round(alphas[:4], 4)} with "
                                  f"weights {np.round(weights[:4], 4)}; expected {np.round(ref_a[:4], 4)} and {np.round(ref_w[:4], 4)}")
    return f"path rules: all {len(attribution.RULES)} rules pass for 1, 4 and 64 steps"
