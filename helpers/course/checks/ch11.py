"""Exercise checks of chapter 11, additive networks: centred shapes and table lookup (convention: `_common`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from helpers.course.checks._common import CheckFailed, _run, _stub_or


def check_centre_shapes(student: Callable) -> str:
    """`student(terms_grid [G, F], terms_data [N, F], bias) -> (centred [G, F], new_bias)`:
    each shape function minus its mean over the data, the means moved into the bias, so
    that the model's predictions do not change. Against `additive.centred_terms`."""
    from helpers import additive

    rng = np.random.default_rng(0)
    for f in (1, 3):
        coef = rng.normal(size=(3, f))

        def terms_fn(x, coef=coef):  # cubic shape functions with offsets
            x = np.asarray(x)
            return coef[0] + coef[1] * x + coef[2] * x**3

        grid = np.linspace(-2, 2, 9)[:, None].repeat(f, 1)
        data = rng.normal(1.0, 1.0, (50, f))
        bias = float(rng.normal())
        out = _stub_or(student, terms_fn(grid), terms_fn(data), bias, what="your centring")
        centred, new_bias = np.asarray(out[0], float), float(out[1])
        want = additive.centred_terms(terms_fn, grid, data)
        if centred.shape != want.shape or np.abs(centred - want).max() > 1e-6:
            raise CheckFailed(f"with {f} feature(s), your centred shape functions differ from the reference by "
                              f"{np.abs(centred - want).max() if centred.shape == want.shape else 'shape'}: subtract each "
                              "column's mean over the data (not over the grid)")
        before = bias + terms_fn(data).sum(1)
        after = new_bias + (terms_fn(data) - terms_fn(data).mean(0)).sum(1)
        if np.abs(before - after).max() > 1e-6:
            raise CheckFailed(f"with {f} feature(s), centring changed the predictions by {np.abs(before - after).max():.3g}: "
                              "the bias must absorb the sum of the subtracted means")
    return "centred shape functions: both cases pass (means 0 on the data, predictions unchanged)"


def check_table_lookup(student: Callable) -> str:
    """`student(lo [F], step [F], values [F, G], x [B, F]) -> [B, F]`: each feature's term
    by linear interpolation in its table (grid point k at lo + k step), holding the end
    values outside the grid. Against `additive.table_terms`."""
    from helpers import additive

    rng = np.random.default_rng(0)
    lo, step = np.array([-1.0, 0.0, 10.0]), np.array([0.5, 0.25, 2.0])
    values = rng.normal(size=(3, 6)).astype(np.float32)
    tables = additive.Tables(lo, step, values, 0.0)
    on_grid = lo + np.arange(6)[:, None] * step
    cases = [(on_grid, "inputs on the grid points (the table values themselves)"),
             (on_grid[:-1] + step / 2, "inputs halfway between grid points (the mean of the neighbours)"),
             (np.array([lo - 3 * step, lo + 9 * step]), "inputs outside the grid (the end values)"),
             (lo + rng.uniform(-1, 6, (40, 3)) * step, "random inputs")]
    for x, name in cases:
        got = _run(student, lo, step, values, x, what="your table lookup")
        want = additive.table_terms(tables, x)
        if got.shape != want.shape:
            raise CheckFailed(f"one term per input and feature: expected shape {want.shape}, got {got.shape}")
        if np.abs(got - want).max() > 1e-5:
            i = np.unravel_index(np.argmax(np.abs(got - want)), got.shape)
            raise CheckFailed(f"for {name}, input {i[0]} feature {i[1]} (x = {x[i]:.3f}) should give {want[i]:.4f}, "
                              f"yours gives {got[i]:.4f}")
    return f"table lookup: all {len(cases)} cases pass"
