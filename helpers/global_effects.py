"""Global effects of tabular features: permutation importance, partial dependence, ALE.

Shape glossary: N examples, F features, G grid points, K bins, R repeats.

Every function takes a model as `predict(x [N, F]) -> [N]` (a logit, a score or a
regression output) and data `x [N, F]`:

- `permutation_importance`: the drop of a score (AUROC, say) when feature j's column is
  shuffled, repeated `R` times (Breiman 2001; Fisher, Rudin and Dominici 2019);
  `permutation_importance_bootstrap` repeats it on bootstrap resamples of the rows.
- `partial_dependence`: `PD_j(z) = mean_i f(z, x_i,-j)` (Friedman 2001): feature j is set
  to z in *every* row, whatever the other features say, so with correlated features the
  model is asked about combinations the data never contain.
- `ale`: accumulated local effects (Apley and Zhu 2020): within each bin of feature j, the
  mean change of f when x_j moves from the bin's lower to its upper edge, *over the rows
  whose x_j is in that bin* only; accumulated over the bins and centred on the data.

For an additive model f = b + sum_j g_j(x_j) both curves equal the centred shape g_j
(the ALE exactly at the bin edges whatever the data; see `ale` for the centring).

Also here: `correlated_case`, the synthetic problem with a known answer where partial
dependence misleads and ALE does not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from helpers import validation
from helpers.additive import check_features


def _predict(predict: Callable, x: np.ndarray) -> np.ndarray:
    out = np.asarray(predict(x), dtype=float)
    if out.shape != (len(x),):
        raise ValueError(f"predict must return one number per row, shape [{len(x)}], got {out.shape}")
    if not np.all(np.isfinite(out)):
        raise ValueError("predict returned NaN or infinite values")
    return out


def _feature(feature, f: int) -> int:
    validation.check_int(feature, "feature", minimum=0)
    if feature >= f:
        raise ValueError(f"feature must be a column index below {f}, got {feature}")
    return int(feature)


def _check_importance_inputs(predict: Callable, x, y, score: Callable) -> tuple[np.ndarray, np.ndarray]:
    """The shared argument checks of the permutation importances: `(x [N, F], y [N])`."""
    validation.check_callable(predict, "predict")
    validation.check_callable(score, "score")
    x = check_features(x)
    y = np.asarray(y)
    if y.shape != (len(x),):
        raise ValueError(f"y must have shape [{len(x)}] to match x, got {y.shape}")
    return x, y


def permutation_importance(predict: Callable, x, y, score: Callable, *, repeats: int = 10, seed: int = 0) -> np.ndarray:
    """`[F, R]`: `score(y, predict(x)) - score(y, predict(x with column j permuted))` for
    each feature j and repeat r (the same permutations for every feature in a repeat)."""
    x, y = _check_importance_inputs(predict, x, y, score)
    validation.check_int(repeats, "repeats", minimum=1)
    validation.check_int(seed, "seed")
    base = float(score(y, _predict(predict, x)))
    rng = np.random.default_rng(seed)
    out = np.zeros((x.shape[1], repeats))
    for r in range(repeats):
        perm = rng.permutation(len(x))
        shuffled = np.repeat(x[None], x.shape[1], axis=0)  # [F, N, F]: one copy per feature
        for j in range(x.shape[1]):
            shuffled[j, :, j] = x[perm, j]
        preds = _predict(predict, shuffled.reshape(-1, x.shape[1])).reshape(x.shape[1], len(x))
        out[:, r] = base - np.array([score(y, p) for p in preds])
    return out


def permutation_importance_bootstrap(predict: Callable, x, y, score: Callable, *, resamples: int = 200,
                                     seed: int = 0, chunk: int = 20) -> np.ndarray:
    """`[R, F]`: permutation importance on `R = resamples` bootstrap resamples of the rows,
    one shuffle each: the uncertainty that comes from the finite evaluation set (and from
    the shuffle) together.

    Resample r draws rows `i_r` (N with replacement) and a permutation `p_r` of them, both
    from one `np.random.default_rng(seed)`, in that order, r = 0, 1, ...; entry `[r, j]` is
    `score(y[i_r], f(x[i_r])) - score(y[i_r], f(x[i_r] with column j replaced by
    x[i_r][p_r, j]))`. The unshuffled predictions are made once (`f(x[i_r]) = f(x)[i_r]`) and
    the shuffled ones in batched calls of `chunk` resamples (`chunk * F * N` rows each).
    """
    x, y = _check_importance_inputs(predict, x, y, score)
    validation.check_int(resamples, "resamples", minimum=2)
    validation.check_int(seed, "seed")
    validation.check_int(chunk, "chunk", minimum=1)
    n, f = x.shape
    rng = np.random.default_rng(seed)
    draws = [(rng.integers(0, n, n), rng.permutation(n)) for _ in range(resamples)]
    base = _predict(predict, x)
    out = np.zeros((resamples, f))
    for start in range(0, resamples, chunk):
        part = draws[start : start + chunk]
        rows = np.repeat(np.stack([x[i] for i, _ in part])[:, None], f, axis=1)  # [c, F, N, F]
        for c, (i, p) in enumerate(part):
            for j in range(f):
                rows[c, j, :, j] = x[i[p], j]
        preds = _predict(predict, rows.reshape(-1, f)).reshape(len(part), f, n)
        for c, (i, _) in enumerate(part):
            full = float(score(y[i], base[i]))
            out[start + c] = [full - float(score(y[i], preds[c, j])) for j in range(f)]
    return out


def partial_dependence(predict: Callable, x, feature: int, grid) -> np.ndarray:
    """`[G]`: `mean_i predict(x_i with feature j set to grid[g])`, one batched call."""
    validation.check_callable(predict, "predict")
    x = check_features(x)
    j = _feature(feature, x.shape[1])
    grid = validation.as_float_array(grid, "grid")
    if grid.ndim != 1 or len(grid) < 1:
        raise ValueError(f"grid must be a vector [G], got shape {grid.shape}")
    validation.check_finite(grid, "grid")
    rows = np.repeat(x[None], len(grid), axis=0)  # [G, N, F]
    rows[:, :, j] = grid[:, None]
    return _predict(predict, rows.reshape(-1, x.shape[1])).reshape(len(grid), len(x)).mean(axis=1)


class ALE(NamedTuple):
    edges: np.ndarray  # [K + 1] bin edges of the feature
    values: np.ndarray  # [K + 1] centred accumulated effect at the edges
    counts: np.ndarray  # [K] rows per bin


def ale_edges(values, bins: int | None) -> np.ndarray:
    """Bin edges `[K + 1]` of a feature's `values [N]`: `bins` quantile bins (ties merged),
    or, with `bins=None`, every distinct value an edge (one bin between neighbours)."""
    values = np.asarray(values, float)
    if bins is None:
        edges = np.unique(values)
    else:
        validation.check_int(bins, "bins", minimum=1)
        edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        raise ValueError("the feature takes a single value: no effect can be accumulated")
    return edges


def ale(predict: Callable, x, feature: int, *, bins: int | None = 20) -> ALE:
    """First-order ALE of `feature` (Apley and Zhu 2020, their eq. 15 with quantile bins).

    Row i with x_ij in bin k = (z_{k-1}, z_k] (the first bin includes its lower edge)
    contributes `f(z_k, x_i,-j) - f(z_{k-1}, x_i,-j)`; the bin's mean is accumulated from
    `A(z_0) = 0`. Centring: the curve, linear between edges, minus its mean over the rows'
    own values of feature j. (Apley and Zhu centre a step function instead; the two agree as
    bins shrink.) For an additive model, `A(z_k) = g_j(z_k) - g_j(z_0)` exactly, and with
    `bins=None` (every value an edge) the centred curve equals `g_j - mean_i g_j(x_ij)` exactly.
    """
    validation.check_callable(predict, "predict")
    x = check_features(x)
    j = _feature(feature, x.shape[1])
    edges = ale_edges(x[:, j], bins)
    k = np.clip(np.searchsorted(edges, x[:, j], side="left"), 1, len(edges) - 1)  # bin 1..K of each row
    lo, hi = x.copy(), x.copy()
    lo[:, j], hi[:, j] = edges[k - 1], edges[k]
    diff = _predict(predict, np.concatenate([hi, lo]))
    diff = diff[: len(x)] - diff[len(x) :]
    counts = np.bincount(k - 1, minlength=len(edges) - 1)
    sums = np.bincount(k - 1, weights=diff, minlength=len(edges) - 1)
    means = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    acc = np.r_[0.0, np.cumsum(means)]
    return ALE(edges, acc - np.interp(x[:, j], edges, acc).mean(), counts)


# ----------------------------------------------------------------------------- known answer


class CorrelatedCase(NamedTuple):
    x: np.ndarray  # [N, 2]
    model: Callable[[np.ndarray], np.ndarray]  # f(x [B, 2]) -> [B]
    slope: float  # the true effect of x1 on the data: f changes by `slope` per unit of x1


def correlated_case(n: int = 1000, *, seed: int = 0, noise: float = 0.05, strength: float = 50.0) -> CorrelatedCase:
    """Two features that move together, `x1 ~ U(0, 1)`, `x2 = x1 + N(0, noise^2)`, and a
    model `f = x1 + x2 + strength (x1 - x2)^2`.

    On the data the last term is tiny (x1 - x2 is noise), so f grows like 2 x1 along the data
    and each feature's local effect is 1 per unit: `E[df/dx1 | x1] = 1 + 2 strength E[x1 -
    x2 | x1] = 1`. Partial dependence sets x1 = z in every row whatever x2 is, so it averages
    `strength (z - x2)^2` over all x2, a parabola of curvature `strength` that lives entirely
    where there are no data (Apley and Zhu's argument, their figure 1).
    """
    validation.check_int(n, "n", minimum=2)
    validation.check_int(seed, "seed")
    validation.check_number(noise, "noise", positive=True)
    validation.check_number(strength, "strength", nonnegative=True)
    rng = np.random.default_rng(seed)
    x1 = rng.uniform(0.0, 1.0, n)
    x = np.column_stack([x1, x1 + noise * rng.standard_normal(n)])

    def model(v):
        v = check_features(v, 2)
        return v[:, 0] + v[:, 1] + strength * (v[:, 0] - v[:, 1]) ** 2

    return CorrelatedCase(x, model, 1.0)
