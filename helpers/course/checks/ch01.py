"""Exercise checks of chapter 1, data and model: AUROC and MCC (convention: `_common`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from helpers.course.checks._common import CheckFailed, _run, _stub_or


def check_auroc(student: Callable) -> str:
    """`student(y [N] in {0, 1}, scores [N]) -> AUROC`. Cases by hand (perfect, reversed,
    all tied, one swapped pair) and random scores with ties against `metrics.auroc`."""
    from helpers import metrics

    cases = [
        ([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], 1.0, "perfectly separated scores"),
        ([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1], 0.0, "perfectly reversed scores"),
        ([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5], 0.5, "all scores tied (a tie counts one half)"),
        ([0, 1, 0, 1], [0.1, 0.3, 0.4, 0.9], 0.75, "one positive below one negative (3 of 4 pairs right)"),
    ]
    rng = np.random.default_rng(0)
    for k in range(3):
        y = rng.integers(0, 2, 60)
        y[:2] = (0, 1)
        cases.append((y, rng.integers(0, 5, 60).astype(float), None, f"random scores with many ties ({k + 1} of 3)"))
    for y, s, want, name in cases:
        want = metrics.auroc(np.asarray(y), np.asarray(s)) if want is None else want
        got = float(_run(student, np.asarray(y), np.asarray(s, float), what="your AUROC"))
        if abs(got - want) > 1e-9:
            raise CheckFailed(f"for {name} the AUROC is {want:.4f}, yours is {got:.4f}: it is the share of "
                              "(positive, negative) pairs the scores order correctly, ties counting one half")
    return f"AUROC: all {len(cases)} cases pass"


def check_mcc(student: Callable) -> str:
    """`student(y [N] in {0, 1}, pred [N] in {0, 1}) -> MCC`. Cases by hand (perfect,
    all wrong, a constant prediction, which scores 0 by convention) and random predictions
    against `metrics.classification_metrics`."""
    from helpers import metrics

    cases = [([0, 0, 1, 1], [0, 0, 1, 1], 1.0, "perfect predictions"),
             ([0, 0, 1, 1], [1, 1, 0, 0], -1.0, "every prediction wrong"),
             ([0, 0, 0, 1], [0, 0, 0, 0], 0.0, "always predicting 0 (a zero margin: MCC is 0 by convention)"),
             ([0, 1, 0, 1], [1, 1, 1, 1], 0.0, "always predicting 1")]
    rng = np.random.default_rng(0)
    for k in range(3):
        y = rng.integers(0, 2, 80)
        pred = np.where(rng.uniform(size=80) < 0.7, y, 1 - y)
        cases.append((y, pred, None, f"random predictions, 70% right ({k + 1} of 3)"))
    for y, pred, want, name in cases:
        y, pred = np.asarray(y), np.asarray(pred)
        want = metrics.classification_metrics(y, 2.0 * pred - 1.0)["mcc"] if want is None else want
        got = float(_stub_or(student, y, pred, what="your MCC"))
        if abs(got - want) > 1e-9:
            raise CheckFailed(f"for {name} the MCC is {want:.4f}, yours is {got:.4f}: "
                              "(TP TN - FP FN) / sqrt((TP + FP)(TP + FN)(TN + FP)(TN + FN)), and 0 when a factor is 0")
    return f"MCC: all {len(cases)} cases pass"
