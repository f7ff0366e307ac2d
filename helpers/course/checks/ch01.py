"""Exercise checks of chapter 1, data and model: AUROC and MCC (convention: `_common`).

Each check runs the student's function on every case first and only then computes the
expected values; with `seed=` an integer, the cases are randomised (the hand cases under a
random order and a random increasing transform of the scores, the random cases redrawn)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from helpers.course.checks._common import CheckFailed, _collect, _rng


def _integer(out) -> bool:
    """Whether an answer came back as an integer (Python int, or an integer/bool array)."""
    return isinstance(out, int | np.integer) or np.asarray(out).dtype.kind in "iub"


def _shuffled(y, s, rng, seed):
    """The case as given (`seed=None`), or in a random order with scores a * s + b, a > 0."""
    y, s = np.asarray(y), np.asarray(s, float)
    if seed is None:
        return y, s
    order = rng.permutation(len(y))
    return y[order], rng.uniform(0.5, 3.0) * s[order] + rng.normal()


# Library functions that hand out the AUROC, or a curve or statistic it is one step from, and
# are off limits in the AUROC exercise (see `_auroc_forbidden`; besides the course's `metrics.auroc`
# and `metrics.roc_curve`, whose area is the AUROC): scikit-learn's ROC curve and its
# other forms (DET: 1 - FNR against FPR; the confusion matrix at every threshold, public from
# scikit-learn 1.8; the precision-recall curve), and SciPy's Mann-Whitney U (U / (n1 n0) is the
# AUROC), Somers' D (`somersd(y, scores).statistic` is 2 AUROC - 1 for 0/1 labels), the rank-sum
# test (its z gives U back exactly) and Kendall's tau-c (0.5 + tau_c n^2 / (8 n1 n0) is the AUROC).
# Those of them `scipy.stats.mstats` has too (masked arrays). `scipy.stats.rankdata` stays allowed: a
# building block.
SKLEARN_AUROC = ("roc_auc_score", "roc_curve", "auc", "det_curve", "precision_recall_curve",
                 "confusion_matrix_at_thresholds")
SCIPY_AUROC = ("mannwhitneyu", "somersd", "ranksums", "kendalltau")


def _auroc_forbidden() -> tuple:
    """The course's `metrics.auroc` and `metrics.roc_curve`, and the library functions of
    `SKLEARN_AUROC` and `SCIPY_AUROC` this installation has."""
    import scipy.stats
    import sklearn.metrics

    from helpers import metrics

    import scipy.stats.mstats

    found = [getattr(sklearn.metrics, n, None) for n in SKLEARN_AUROC] + [getattr(scipy.stats, n, None) for n in SCIPY_AUROC] \
        + [getattr(scipy.stats.mstats, n, None) for n in SCIPY_AUROC]  # the masked-array versions too
    return (metrics.auroc, metrics.roc_curve, *(f for f in found if f is not None))


def check_auroc(student: Callable, *, seed: int | None = None) -> str:
    """`student(y [N] in {0, 1}, scores [N]) -> AUROC`. Cases by hand (perfect, reversed,
    all tied, one swapped pair) and random scores with ties against `metrics.auroc`; the
    course's `metrics.auroc` and `metrics.roc_curve`, scikit-learn's ROC curves (`roc_auc_score`, `roc_curve`, `auc`,
    `det_curve`, ...) and SciPy's `mannwhitneyu`, `somersd`, `ranksums` and `kendalltau` (see `SKLEARN_AUROC`,
    `SCIPY_AUROC`) are off limits while yours runs: "write it yourself"."""
    from helpers import metrics

    rng = _rng(seed)
    names = ["perfectly separated scores", "perfectly reversed scores", "all scores tied (a tie counts one half)",
             "one positive below one negative (3 of 4 pairs right)"]
    hand = [([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]), ([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]),
            ([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]), ([0, 1, 0, 1], [0.1, 0.3, 0.4, 0.9])]
    cases = [_shuffled(y, s, rng, seed) for y, s in hand]
    for k in range(3):
        n = 60 if seed is None else int(rng.integers(30, 90))
        y = rng.integers(0, 2, n)
        y[:2] = (0, 1)
        cases.append((y, rng.integers(0, 5, n).astype(float)))
        names.append(f"random scores with many ties ({k + 1} of 3)")
    raw = _collect(student, cases, what="your AUROC", forbidden=_auroc_forbidden(), raw=True)
    for (y, s), out, name in zip(cases, raw, names, strict=True):
        got = np.asarray(out, dtype=float)
        if got.shape != ():
            raise CheckFailed(f"for {name} return one number, the AUROC; yours has shape {got.shape}")
        err = abs(float(got) - metrics.auroc(y, s))
        if err > 1e-6 and _integer(out):
            raise CheckFailed(f"for {name} your AUROC is off by {err:.3g} and is an integer ({np.asarray(out).dtype}): "
                              "a share of pairs needs float division (not //, int() or an integer array)")
        if err > 1e-6:  # float32 (jnp) answers land within ~2e-8; one wrong pair or count moves it by over 1e-4
            raise CheckFailed(f"for {name} your AUROC is off by {err:.3g}: it is the share of (positive, negative) "
                              "pairs the scores order correctly, ties counting one half")
    return f"AUROC: all {len(cases)} cases pass"


def check_mcc(student: Callable, *, seed: int | None = None) -> str:
    """`student(y [N] in {0, 1}, pred [N] in {0, 1}) -> MCC`. Cases by hand (perfect, all
    wrong, a constant prediction, which scores 0 by convention) and random predictions
    against `metrics.classification_metrics`; that helper and scikit-learn's
    `matthews_corrcoef` are off limits while yours runs."""
    from sklearn.metrics import matthews_corrcoef

    from helpers import metrics

    rng = _rng(seed)
    names = ["perfect predictions", "every prediction wrong",
             "always predicting 0 (a zero margin: MCC is 0 by convention)", "always predicting 1"]
    cases = [([0, 0, 1, 1], [0, 0, 1, 1]), ([0, 0, 1, 1], [1, 1, 0, 0]), ([0, 0, 0, 1], [0, 0, 0, 0]),
             ([0, 1, 0, 1], [1, 1, 1, 1])]
    if seed is not None:
        perms = [rng.permutation(len(y)) for y, _ in cases]
        cases = [(np.asarray(y)[p], np.asarray(q)[p]) for (y, q), p in zip(cases, perms, strict=True)]
    for k in range(3):
        n = 80 if seed is None else int(rng.integers(40, 120))
        y = rng.integers(0, 2, n)
        pred = np.where(rng.uniform(size=n) < (0.7 if seed is None else rng.uniform(0.55, 0.9)), y, 1 - y)
        cases.append((y, pred))
        names.append(f"random predictions, mostly right ({k + 1} of 3)")
    cases = [(np.asarray(y), np.asarray(p)) for y, p in cases]
    raw = _collect(student, cases, what="your MCC", forbidden=(metrics.classification_metrics, matthews_corrcoef), raw=True)
    wants = [metrics.classification_metrics(y, 2.0 * p - 1.0)["mcc"] for y, p in cases]
    flipped = all(abs(float(np.asarray(o, dtype=float).sum()) + w) <= 1e-6 for o, w in zip(raw, wants, strict=True))
    for out, name, want in zip(raw, names, wants, strict=True):
        got = np.asarray(out, dtype=float)
        if got.shape != ():
            raise CheckFailed(f"for {name} return one number, the MCC; yours has shape {got.shape}")
        err = abs(float(got) - want)
        if err > 1e-6 and _integer(out):
            raise CheckFailed(f"for {name} your MCC is off by {err:.3g} and is an integer ({np.asarray(out).dtype}): "
                              "the ratio needs float division (not //, int() or an integer array)")
        if err > 1e-6 and flipped:
            raise CheckFailed(f"for {name} your MCC has its sign flipped: TP TN - FP FN, not FP FN - TP TN")
        if err > 1e-6:  # float32 (jnp) answers land within ~2e-8; one wrong pair or count moves it by over 1e-4
            raise CheckFailed(f"for {name} your MCC is off by {err:.3g}: "
                              "(TP TN - FP FN) / sqrt((TP + FP)(TP + FN)(TN + FP)(TN + FN)), and 0 when a factor is 0")
    return f"MCC: all {len(cases)} cases pass"
