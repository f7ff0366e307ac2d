"""Exercise checks of chapter 8, LIME: weighted ridge and the least-squares surrogate
(convention: `_common`; the student's function runs on every case before any expected value
is computed)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from helpers import sequences as seqs_lib
from helpers.course.checks._common import CheckFailed, _collect, _models, _peptides, _rng, _where


def _ridge_solvers() -> tuple:
    """scikit-learn's ridge fits: off limits in both exercises of the chapter."""
    from sklearn.linear_model import LinearRegression, Ridge, ridge_regression

    return Ridge.fit, LinearRegression.fit, ridge_regression


def check_weighted_ridge(student: Callable, *, seed: int | None = None) -> str:
    """`student(z [S, k], y [S], w [S], alpha) -> (coef [k], intercept)`: the minimiser of
    sum_s w_s (y_s - z_s . coef - intercept)^2 + alpha |coef|^2 (intercept not penalised).
    Cases: random switches against scikit-learn's `Ridge(alpha).fit(z, y, sample_weight=w)`
    (off limits while yours runs), alpha 0, 1 and 10, with equal and very unequal weights."""
    from sklearn.linear_model import Ridge

    rng = _rng(seed)
    cases = []
    for alpha in (0.0, 1.0, 10.0):
        z = (rng.uniform(size=(200, 6)) < 0.6).astype(float)
        y = z @ rng.normal(size=6) + 0.5 + rng.normal(0, 0.3, 200)
        for w, wname in ((np.ones(200), "equal weights"), (np.exp(-3 * rng.uniform(size=200) * np.arange(200) / 200), "unequal weights")):
            cases.append((z, y, w, alpha, wname))
    outs = _collect(student, [c[:4] for c in cases], what="your weighted ridge", forbidden=_ridge_solvers(), raw=True)
    for (z, y, w, alpha, wname), out in zip(cases, outs, strict=True):
        coef, intercept = np.asarray(out[0], float), float(out[1])
        ref = Ridge(alpha=alpha).fit(z, y, sample_weight=w)
        if coef.shape != ref.coef_.shape:
            raise CheckFailed(f"one coefficient per column of z: expected shape {ref.coef_.shape}, got {coef.shape}")
        off = max(np.abs(coef - ref.coef_).max(), abs(intercept - ref.intercept_))
        if off > 1e-4 * max(1.0, np.abs(ref.coef_).max()):  # float32 (jnp) solves land within ~1e-5
            hint = ("centre z and y by their *weighted* means, so the intercept is not penalised" if wname == "unequal weights"
                    else "solve (Zc^T W Zc + alpha I) coef = Zc^T W yc on centred data, then intercept = mean(y) - mean(z) . coef")
            raise CheckFailed(f"alpha = {alpha}, {wname}: your coefficients or intercept are off by {off:.3g}: {hint}")
    return "weighted ridge: all 6 cases pass (they match scikit-learn)"


def check_lime_least_squares(student: Callable, *, seed: int | None = None) -> str:
    """`student(f, x [L, A], rng, n_samples, kernel_width) -> [n]`: LIME with an unpenalised
    weighted least-squares surrogate (lime's sampler and kernel of chapter 8). Cases: the
    linear model, where the surrogate recovers each residue's term exactly, and the course
    CNN, where the ranking must match `surrogate.lime` (alpha = 0, off limits while yours
    runs) up to sampling noise."""
    from helpers import surrogate

    linear, weights, cnn = _models(seed)
    peptides = _peptides(seed)
    r = 0 if seed is None else int(_rng(seed, 3).integers(1, 2**20))
    xs = [jnp.asarray(seqs_lib.encode(seq)) for seq in peptides]
    calls = [(linear, x, np.random.default_rng(r), 500, 0.25) for x in xs]
    calls += [(cnn, x, np.random.default_rng(r + k), 4000, 0.25) for k, x in enumerate(xs)]
    outs = _collect(student, calls, what="your LIME", forbidden=(surrogate.lime, *_ridge_solvers()))
    for seq, x, got in zip(peptides, xs, outs[: len(xs)], strict=True):
        want = weights[np.asarray(x).argmax(-1)[: len(seq)]]
        if got.shape != want.shape:
            raise CheckFailed(f"one coefficient per residue: {seq} has {len(seq)}, yours has shape {got.shape}")
        if np.abs(got - want).max() > 1e-3:
            raise CheckFailed(f"on the linear model the surrogate must recover each residue's own term exactly, but yours "
                              f"is off by {np.abs(got - want).max():.3g} at {_where(got - want, seq)}: sample which residues "
                              "to keep, mask the others in place (padding row), and fit the logits by weighted least squares")
    worst = 1.0
    for k, (seq, x, got) in enumerate(zip(peptides, xs, outs[len(xs):], strict=True)):
        want = surrogate.lime(cnn, x, jax.random.PRNGKey(r + k), n_samples=4000, kernel_width=0.25, alpha=0.0).coefficients
        rho = float(np.corrcoef(np.argsort(np.argsort(got)), np.argsort(np.argsort(want)))[0, 1])
        worst = min(worst, rho)
        if rho < 0.7:
            raise CheckFailed(f"on the course CNN and {seq} your coefficients rank the residues differently from the "
                              f"reference (Spearman {rho:.2f} < 0.7): check the kernel sqrt(exp(-d^2 / w^2)) with d the "
                              "fraction of residues removed, and that sample s is weighted by it")
    return f"LIME (least squares): all {2 * len(peptides)} cases pass (lowest rank correlation on the CNN {worst:.2f})"
