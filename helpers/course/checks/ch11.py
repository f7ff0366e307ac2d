"""Exercise checks of chapter 11, additive networks: centred shapes and table lookup
(convention: `_common`; the student's function runs on every case before any expected value
is computed)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from helpers.course.checks._common import CheckFailed, _collect, _rng


def check_centre_shapes(student: Callable, *, seed: int | None = None) -> str:
    """`student(terms_grid [G, F], terms_data [N, F], bias) -> (centred [G, F], new_bias)`:
    each shape function minus its mean over the data, the means moved into the bias, so
    that the model's predictions do not change. Against `additive.centred_terms` (off
    limits while yours runs)."""
    from helpers import additive

    rng = _rng(seed)
    cases = []
    for f in (1, 3):
        coef = rng.normal(size=(3, f))

        def terms_fn(x, coef=coef):  # cubic shape functions with offsets
            x = np.asarray(x)
            return coef[0] + coef[1] * x + coef[2] * x**3

        grid = np.linspace(-2, 2, 9)[:, None].repeat(f, 1)
        data = rng.normal(1.0, 1.0, (50, f))
        cases.append((terms_fn, grid, data, float(rng.normal()), f))
    outs = _collect(student, [(t(g), t(d), b) for t, g, d, b, _ in cases], what="your centring", raw=True,
                    forbidden=(additive.centred_terms, additive.shapes_from_predict))
    for (terms_fn, grid, data, bias, f), out in zip(cases, outs, strict=True):
        centred, new_bias = np.asarray(out[0], float), float(out[1])
        want = additive.centred_terms(terms_fn, grid, data)
        if centred.shape != want.shape:
            raise CheckFailed(f"with {f} feature(s) the centred shape functions keep the grid's shape {want.shape}; yours {centred.shape}")
        if np.abs(centred - want).max() > 1e-5 * max(1.0, float(np.abs(want).max())):  # float32 (jnp) answers pass
            raise CheckFailed(f"with {f} feature(s), your centred shape functions are off by {np.abs(centred - want).max():.3g}: "
                              "subtract each column's mean over the data (not over the grid)")
        before = bias + terms_fn(data).sum(1)
        after = new_bias + (terms_fn(data) - terms_fn(data).mean(0)).sum(1)
        if np.abs(before - after).max() > 1e-5 * max(1.0, float(np.abs(before).max())):
            raise CheckFailed(f"with {f} feature(s), centring changed the predictions by {np.abs(before - after).max():.3g}: "
                              "the bias must absorb the sum of the subtracted means")
    return "centred shape functions: both cases pass (means 0 on the data, predictions unchanged)"


def check_table_lookup(student: Callable, *, seed: int | None = None) -> str:
    """`student(lo [F], step [F], values [F, G], x [B, F]) -> [B, F]`: each feature's term
    by linear interpolation in its table (grid point k at lo + k step), holding the end
    values outside the grid. Against `additive.table_terms` (off limits while yours runs)."""
    from helpers import additive

    rng = _rng(seed)
    if seed is None:
        lo, step = np.array([-1.0, 0.0, 10.0]), np.array([0.5, 0.25, 2.0])
    else:
        lo, step = rng.uniform(-5, 5, 3), rng.uniform(0.1, 2.0, 3)
    values = rng.normal(size=(3, 6)).astype(np.float32)
    on_grid = lo + np.arange(6)[:, None] * step
    names = ["inputs on the grid points (the table values themselves)",
             "inputs halfway between grid points (the mean of the neighbours)", "inputs outside the grid (the end values)",
             "random inputs"]
    xs = [on_grid, on_grid[:-1] + step / 2, np.array([lo - 3 * step, lo + 9 * step]), lo + rng.uniform(-1, 6, (40, 3)) * step]
    outs = _collect(student, [(lo, step, values, x) for x in xs], what="your table lookup",
                    forbidden=(additive.table_terms, additive.table_predict))
    tables = additive.Tables(lo, step, values, 0.0)
    for x, got, name in zip(xs, outs, names, strict=True):
        want = additive.table_terms(tables, x)
        if got.shape != want.shape:
            raise CheckFailed(f"one term per input and feature: expected shape {want.shape}, got {got.shape}")
        if np.abs(got - want).max() > 1e-5:
            i = np.unravel_index(np.argmax(np.abs(got - want)), got.shape)
            raise CheckFailed(f"for {name}, input {i[0]} feature {i[1]} (x = {x[i]:.3f}) is off by {abs(got[i] - want[i]):.3g}")
    return f"table lookup: all {len(xs)} cases pass"
