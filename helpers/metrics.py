"""Binary classification metrics in numpy (checked against scikit-learn in the tests).

Shapes: y `[N]` in {0, 1}; scores `[N]` real (logits or probabilities; only order matters
for the ROC); predictions `[N]` in {0, 1}.
"""

from __future__ import annotations

import numpy as np


def _check(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y, s = np.asarray(y), np.asarray(s, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"labels {y.shape} and scores {s.shape} must be 1-D of equal length")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    return y.astype(int), s


def auroc(y: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties)."""
    y, s = _check(y, scores)
    n1, n0 = y.sum(), (1 - y).sum()
    if n1 == 0 or n0 == 0:
        raise ValueError("AUROC needs both classes among the labels")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def roc_curve(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False-positive rates, true-positive rates and thresholds (descending)."""
    y, s = _check(y, scores)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tps = np.cumsum(y)[last]
    fps = (last + 1) - tps
    tpr = np.r_[0.0, tps / max(y.sum(), 1)]
    fpr = np.r_[0.0, fps / max((1 - y).sum(), 1)]
    return fpr, tpr, np.r_[np.inf, s[last]]


def average_precision(y: np.ndarray, scores: np.ndarray) -> float:
    """Average precision: sum over distinct thresholds, highest first, of the precision at
    that threshold times the gain in recall (the step-wise area under the precision-recall
    curve, as `sklearn.metrics.average_precision_score`). A constant score gets the share of
    positives."""
    y, s = _check(y, scores)
    if y.sum() == 0:
        raise ValueError("average precision needs at least one positive label")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the last example of each distinct score
    tps = np.cumsum(y)[last]
    recall = tps / y.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * tps / (last + 1)))


def confusion(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """2x2 counts `[[TN, FP], [FN, TP]]` (rows: truth, columns: prediction)."""
    y, p = _check(y, pred)
    p = p.astype(int)
    return np.array([[np.sum((y == t) & (p == q)) for q in (0, 1)] for t in (0, 1)])


def classification_metrics(y: np.ndarray, logits: np.ndarray, *, threshold: float = 0.0) -> dict:
    """Accuracy, balanced accuracy, MCC (at logit `threshold`) and AUROC."""
    y, s = _check(y, logits)
    (tn, fp), (fn, tp) = confusion(y, (s > threshold).astype(int))
    tpr = tp / max(tp + fn, 1)
    tnr = tn / max(tn + fp, 1)
    denom = np.sqrt(float((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)))
    return {
        "accuracy": float((tp + tn) / len(y)),
        "balanced_accuracy": float((tpr + tnr) / 2),
        "mcc": float((tp * tn - fp * fn) / denom) if denom > 0 else 0.0,
        "auroc": auroc(y, s),
    }


def precision_at_k(scores, truth, k: int | None = None) -> float:
    """The fraction of the k highest `scores [n]` that fall on `truth [n]` (bool: the
    residues a correct explanation should point at). k defaults to the number of true
    residues; ties are broken by position (first wins)."""
    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(truth, dtype=bool)
    if s.ndim != 1 or s.shape != t.shape:
        raise ValueError(f"scores {s.shape} and truth {t.shape} must be 1-D of equal length")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    k = int(t.sum()) if k is None else k
    if not 1 <= k <= len(s):
        raise ValueError(f"k must lie between 1 and {len(s)}, got {k} (is any residue marked true?)")
    top = np.argsort(-s, kind="stable")[:k]
    return float(t[top].mean())


def _stratified_resamples(statistic, y: np.ndarray, n_resamples, seed: int, name: str):
    """Checks `statistic` and `n_resamples` (at once), then returns an iterator over
    `n_resamples` index arrays drawn with replacement within each class (the resampling of `bootstrap` and `paired_bootstrap`)."""
    if not callable(statistic):
        raise TypeError(f"statistic must be a function f(y, scores) -> float, got {type(statistic).__name__}")
    if not isinstance(n_resamples, (int, np.integer)) or isinstance(n_resamples, bool) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    groups = [np.flatnonzero(y == c) for c in (0, 1)]
    if any(len(g) == 0 for g in groups):
        raise ValueError(f"{name} needs both classes among the labels (it resamples within each)")
    rng = np.random.default_rng(seed)
    return (np.concatenate([rng.choice(g, size=len(g)) for g in groups]) for _ in range(n_resamples))


def bootstrap(statistic, y: np.ndarray, scores: np.ndarray, *, n_resamples: int = 2000, seed: int = 0) -> np.ndarray:
    """`[n_resamples]` values of `statistic(y, scores)` on resamples of the examples drawn
    with replacement *within each class* (a stratified bootstrap: every resample keeps the
    numbers of positives and negatives, so AUROC is always defined). Percentiles of the
    result give a confidence interval, its standard deviation a standard error."""
    y, s = _check(y, scores)
    resamples = _stratified_resamples(statistic, y, n_resamples, seed, "bootstrap")
    out = np.empty(n_resamples)
    for r, idx in enumerate(resamples):
        out[r] = statistic(y[idx], s[idx])
    return out


def paired_bootstrap(statistic, y: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray, *,
                     n_resamples: int = 2000, seed: int = 0) -> np.ndarray:
    """`[n_resamples]` differences `statistic(y, scores_a) - statistic(y, scores_b)`, both
    computed on the *same* stratified resample (drawn as in `bootstrap`, so with equal seeds
    the resamples are the same). Pairing keeps what the two scores share out of the spread:
    percentiles of the result give a confidence interval for the difference of two models
    scored on one test set."""
    for name, sc in (("scores_a", scores_a), ("scores_b", scores_b)):
        if np.shape(sc) != np.shape(y):
            raise ValueError(f"{name} must have the shape of y {np.shape(y)}, got {np.shape(sc)}")
    y, a = _check(y, scores_a)
    _, b = _check(y, scores_b)
    resamples = _stratified_resamples(statistic, y, n_resamples, seed, "paired_bootstrap")
    out = np.empty(n_resamples)
    for r, idx in enumerate(resamples):
        out[r] = statistic(y[idx], a[idx]) - statistic(y[idx], b[idx])
    return out
