"""Exercise checks of chapter 16, concepts and global effects: partial dependence and
accumulated local effects (convention: `_common`; the student's function runs on every case
before any expected value is computed)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from helpers.course.checks._common import CheckFailed, _collect, _off, _rng


def _cases(seed: int | None):
    """An additive model with known shapes and the correlated case of `global_effects`."""
    from helpers import global_effects

    rng = _rng(seed, 16)
    coef = rng.normal(size=3) if seed is not None else np.array([1.0, -0.5, 0.8])

    def additive_model(v):  # g_0 = c0 x0^3, g_1 = c1 sin(3 x1), g_2 = c2 x2^2: additive
        v = np.asarray(v, float)
        return coef[0] * v[:, 0] ** 3 + coef[1] * np.sin(3 * v[:, 1]) + coef[2] * v[:, 2] ** 2

    x_add = rng.normal(size=(200, 3))
    x_add[:, 1] = 0.7 * x_add[:, 0] + 0.3 * x_add[:, 1]  # correlated features: no excuse for the additive case
    case = global_effects.correlated_case(400, seed=0 if seed is None else int(rng.integers(1 << 30)), strength=10.0)
    return additive_model, x_add, coef, case


def check_partial_dependence(student: Callable, *, seed: int | None = None) -> str:
    """`student(predict, x [N, F], feature, grid [G]) -> [G]`: the mean over the rows of
    `predict` with the feature set to each grid value. Against `global_effects.partial_dependence`
    (off limits while yours runs)."""
    from helpers import global_effects

    model, x_add, _, case = _cases(seed)
    grid = np.linspace(-1.0, 1.5, 6)
    calls = [(model, x_add, 0, grid), (model, x_add, 2, grid), (case.model, case.x, 0, grid)]
    outs = _collect(student, calls, what="your partial dependence", forbidden=(global_effects.partial_dependence,))
    names = ["the additive model, feature 0", "the additive model, feature 2", "the correlated case, feature 0"]
    for (f, x, j, g), got, name in zip(calls, outs, names, strict=True):
        want = global_effects.partial_dependence(f, x, j, g)
        if got.shape != want.shape:
            raise CheckFailed(f"one value per grid point: expected shape {want.shape}, got {got.shape}")
        tol = 1e-5 * max(1.0, float(np.abs(want).max()))  # what a float32 (jnp) answer can do
        if _off(got, want) > tol:
            rows = x.copy()
            at_mean = np.array([f(np.r_[rows.mean(0)[:j], v, rows.mean(0)[j + 1:]][None])[0] for v in g])
            if _off(got, at_mean) < tol:
                raise CheckFailed(f"for {name} you evaluated the model at the average row: partial dependence is the "
                                  "average of the model's outputs over the rows, not the output at the average row")
            raise CheckFailed(f"for {name} your curve is off by {_off(got, want):.3g}: set the feature to the grid value "
                              "in every row and average the predictions")
    return f"partial dependence: all {len(calls)} cases pass"


def check_ale(student: Callable, *, seed: int | None = None) -> str:
    """`student(predict, x [N, F], feature, edges [K + 1]) -> [K + 1]`: the *uncentred*
    accumulated local effect at the edges (0 at the first edge); row i in bin k (z_{k-1} <
    x_ij <= z_k, the first bin closed) contributes f(z_k, rest) - f(z_{k-1}, rest), averaged
    within the bin. Against `global_effects.ale` (off limits while yours runs)."""
    from helpers import global_effects

    model, x_add, coef, case = _cases(seed)
    e_add = global_effects.ale_edges(x_add[:, 0], 8)
    e_case = global_effects.ale_edges(case.x[:, 0], 10)
    calls = [(model, x_add, 0, e_add), (case.model, case.x, 0, e_case)]
    outs = _collect(student, calls, what="your ALE", forbidden=(global_effects.ale, global_effects.partial_dependence))
    got_add, got_case = outs
    want_add = coef[0] * (e_add**3 - e_add[0] ** 3)  # additive: the shape function's increments, exactly
    if got_add.shape != want_add.shape:
        raise CheckFailed(f"one value per edge: expected shape {want_add.shape}, got {got_add.shape}")
    tol = 1e-5 * max(1.0, float(np.abs(want_add).max()))  # what a float32 (jnp) answer can do
    if abs(got_add[0]) > tol:
        raise CheckFailed(f"the accumulated effect starts at 0 at the first edge; yours starts at {got_add[0]:.3g} "
                          "(this exercise asks for the uncentred curve)")
    if _off(got_add, want_add) > tol:
        raise CheckFailed(f"on an additive model the ALE must equal the shape function's increments g(z_k) - g(z_0); "
                          f"yours is off by {_off(got_add, want_add):.3g}")
    want = global_effects.ale(case.model, case.x, 0, bins=10)
    want_case = want.values - want.values[0]
    tol = 1e-5 * max(1.0, float(np.abs(want_case).max()))
    if _off(got_case, want_case) > tol:
        pd_curve = global_effects.partial_dependence(case.model, case.x, 0, e_case)
        if _off(got_case, pd_curve - pd_curve[0]) < tol:
            raise CheckFailed("on the correlated case you averaged each bin's differences over every row: that is partial "
                              "dependence; ALE averages over the rows whose value lies in the bin")
        raise CheckFailed(f"on the correlated case your ALE is off by {_off(got_case, want_case):.3g}: for each bin, average "
                          "f(upper edge) - f(lower edge) over the rows in that bin, then take the running sum")
    return "ALE: the additive case (exact increments) and the correlated case pass"
