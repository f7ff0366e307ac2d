"""LIME for peptides: a weighted sparse linear surrogate over "residue present" switches.

Shape glossary: n residues of one peptide, S perturbed samples, k selected residues.

Each sample z in {0, 1}^n keeps the residues where z = 1 and replaces the others by a fill
(padding by default: the residue is masked in place; see `perturbation.game_for_fill`).
As in lime's text explainer (`LimeTextExplainer`, its `__data_labels_distances`), the first
sample is x itself and every other sample removes a uniformly drawn number 1 .. n of residues
chosen at random: n included, so a sample may remove every residue (the empty peptide, an
all-padding input). Samples are weighted by an
exponential kernel of their Hamming distance to x, measured as the fraction d of residues
removed: pi(z) = sqrt(exp(-d^2 / w^2)) (lime's kernel). The surrogate is fitted with
scikit-learn: `n_features` residues selected along the weighted lasso path (lime's
"lasso_path"), then a weighted ridge regression on them (lime's default, alpha = 1).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np
from sklearn.linear_model import Ridge, lars_path

from helpers import validation
from helpers.attribution import PredictFn
from helpers.perturbation import check_key, game_for_fill


class LimeResult(NamedTuple):
    coefficients: np.ndarray  # [n] surrogate weights (logit per residue present); 0 if not selected
    intercept: float  # the surrogate's value with every residue removed
    r2: float  # weighted R^2 of the surrogate on its own samples (local fidelity)
    selected: np.ndarray  # [k] residue indices the surrogate uses
    f_x: float  # the model's logit at x
    model_calls: int  # forward passes (samples x references)


def kernel_weights(distance, kernel_width: float) -> np.ndarray:
    """lime's kernel sqrt(exp(-d^2 / w^2)) of distances `[S]` (here: fraction of residues removed)."""
    validation.check_number(kernel_width, "kernel_width", positive=True)
    d = validation.check_finite(validation.as_float_array(distance, "distance").astype(np.float64), "distance")
    return np.sqrt(np.exp(-(d**2) / kernel_width**2))


def sample_masks(key: jax.Array, n: int, n_samples: int) -> np.ndarray:
    """`[S, n]` bool: row 0 keeps every residue; each other row removes a uniform number
    1 .. n of residues (n included: lime's `randint(1, doc_size + 1)`), chosen uniformly
    (lime's text sampler)."""
    validation.check_key(key)
    validation.check_int(n, "n", minimum=1)
    validation.check_int(n_samples, "n_samples", minimum=1)
    k_count, k_which = jax.random.split(key)
    removed = np.asarray(jax.random.randint(k_count, (n_samples - 1,), 1, n + 1))  # 1 .. n
    ranks = np.argsort(np.asarray(jax.random.uniform(k_which, (n_samples - 1, n))), axis=1)
    masks = ranks >= removed[:, None]
    return np.concatenate([np.ones((1, n), dtype=bool), masks])


def select_features(z: np.ndarray, y: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:
    """Indices of at most k columns of `z [S, n]`: the last point of the weighted lasso path
    (scikit-learn's `lars_path`) with at most k non-zero coefficients."""
    validation.check_int(k, "k", minimum=0)
    z, y, w = (validation.as_float_array(a, name) for a, name in ((z, "z"), (y, "y"), (w, "w")))
    if z.ndim != 2 or y.shape != (len(z),) or w.shape != (len(z),) or len(z) == 0:
        raise ValueError(f"z [S >= 1, n], y [S] and w [S] must agree; got {z.shape}, {y.shape}, {w.shape}")
    validation.check_finite(y, "y")
    validation.check_finite(w, "w")
    zc = (z - np.average(z, axis=0, weights=w)) * np.sqrt(w)[:, None]
    yc = (y - np.average(y, weights=w)) * np.sqrt(w)
    _, _, coefs = lars_path(zc, yc, method="lasso")
    for i in range(coefs.shape[1] - 1, -1, -1):
        nonzero = np.flatnonzero(coefs[:, i])
        if len(nonzero) <= k:
            return nonzero
    return np.arange(0)


def lime(
    f: PredictFn,
    x,
    key: jax.Array,
    *,
    n_samples: int = 1000,
    kernel_width: float = 0.25,
    n_features: int | None = None,
    fill="padding",
    alpha: float = 1.0,
    length: int | None = None,
) -> LimeResult:
    """LIME explanation of peptide `x [L, A]`: per-residue surrogate coefficients `[n]`.

    `key`: a JAX PRNG key (the same key gives the same answer). `n_samples` perturbed
    peptides (one batched model pass); `kernel_width` w in units of the fraction of residues
    removed; `n_features`: how many residues the surrogate may use (None: all); `fill` as in
    `perturbation.occlusion`; `alpha`: the ridge penalty; `length` as in `make_game`.
    """
    check_key(key)
    game = game_for_fill(f, x, fill, length=length)
    n = game.n
    if n < 2:
        raise ValueError("LIME needs a peptide of at least 2 residues (with one, remove it or not)")
    if not isinstance(n_samples, (int, np.integer)) or n_samples < 2 * (n + 1):
        raise ValueError(
            f"n_samples must be an integer >= 2 (n + 1) = {2 * (n + 1)} for {n} residues: the surrogate has "
            f"n + 1 numbers and fewer samples make its fit (and R^2) meaningless; got {n_samples!r} "
            "(lime's default is 5000)"
        )
    validation.check_number(kernel_width, "kernel_width", positive=True)
    validation.check_number(alpha, "alpha", nonnegative=True)
    if n_features is None:
        n_features = n
    if not isinstance(n_features, (int, np.integer)) or not 1 <= n_features:
        raise ValueError(f"n_features must be an integer >= 1 or None, got {n_features!r}")
    z = sample_masks(key, n, n_samples)
    y = game(z)
    w = kernel_weights((~z).sum(axis=1) / n, kernel_width)
    zf = z.astype(np.float64)
    selected = np.arange(n) if n_features >= n else np.sort(select_features(zf, y, w, n_features))
    coefficients = np.zeros(n)
    if len(selected) == 0:  # nothing enters the path: the surrogate is a constant
        intercept = float(np.average(y, weights=w))
        r2 = 0.0
    else:
        ridge = Ridge(alpha=alpha).fit(zf[:, selected], y, sample_weight=w)
        coefficients[selected] = ridge.coef_
        intercept = float(ridge.intercept_)
        r2 = float(ridge.score(zf[:, selected], y, sample_weight=w))
    return LimeResult(coefficients, intercept, r2, selected, game.full, game.calls)
