"""Exercise checks of chapter 13, evaluating explanations: deletion curves and Spearman's rho (convention: `_common`)."""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

from helpers import sequences as seqs_lib
from helpers.course.checks._common import PEPTIDES, CheckFailed, _models, _run, _stub_or


def check_deletion_curve(student: Callable) -> str:
    """`student(f, x [L, A], order [n]) -> logits [n + 1]`: f after deleting (padding in
    place) the first k residues of `order`, k = 0 .. n. Cases: an additive model, where the
    curve is f(x) minus cumulative sums of the residues' terms, and the course CNN against
    `evaluation.faithfulness_curve`."""
    from helpers import evaluation

    linear, weights, cnn = _models()
    rng = np.random.default_rng(0)
    for seq in PEPTIDES:
        x = jnp.asarray(seqs_lib.encode(seq))
        order = rng.permutation(len(seq))
        terms = weights[np.asarray(x).argmax(-1)[: len(seq)]]  # each residue's own term
        want = terms.sum() - np.concatenate([[0.0], np.cumsum(terms[order])])
        got = _run(student, linear, x, order, what="your deletion curve")
        if got.shape != want.shape:
            raise CheckFailed(f"for {len(seq)} residues the curve has {len(seq) + 1} points (0 to {len(seq)} deleted); yours has shape {got.shape}")
        if np.abs(got - want).max() > 1e-4:
            k = int(np.argmax(np.abs(got - want)))
            raise CheckFailed(f"on an additive model, after deleting {k} residues of {seq} the logit is {want[k]:.4f}, "
                              f"yours is {got[k]:.4f}: delete residues in `order`, replacing each by the padding row")
        want = evaluation.faithfulness_curve(cnn, x, order)
        got = _run(student, cnn, x, order, what="your deletion curve")
        if np.abs(got - want).max() > 1e-4:
            k = int(np.argmax(np.abs(got - want)))
            raise CheckFailed(f"on the course CNN, after deleting {k} residues of {seq} the logit is {want[k]:.4f}, yours is {got[k]:.4f}")
    return f"deletion curve: all {2 * len(PEPTIDES)} cases pass"


def check_spearman(student: Callable) -> str:
    """`student(a [n], b [n]) -> rho`: Spearman's rank correlation, the Pearson correlation
    of the ranks, tied values sharing the average of their ranks. Cases by hand and random
    scores with many ties against `scipy.stats.spearmanr`."""
    from scipy.stats import spearmanr

    cases = [([1, 2, 3, 4], [10, 20, 30, 40], "increasing together (1)"),
             ([1, 2, 3, 4], [4, 3, 2, 1], "reversed (-1)"),
             ([1, 2, 3, 4], [1, 4, 9, 16], "a monotone but non-linear relation (1: only ranks count)"),
             ([1, 1, 2, 3], [1, 2, 2, 3], "ties, which share their average rank")]
    rng = np.random.default_rng(0)
    for k in range(3):
        cases.append((rng.integers(0, 5, 40), rng.integers(0, 5, 40), f"random scores with many ties ({k + 1} of 3)"))
    for a, b, name in cases:
        a, b = np.asarray(a, float), np.asarray(b, float)
        want = float(spearmanr(a, b).statistic)
        got = float(_stub_or(student, a, b, what="your Spearman correlation"))
        if abs(got - want) > 1e-9:
            raise CheckFailed(f"for {name} rho = {want:.4f}, yours is {got:.4f}"
                              + (": give tied values the mean of the ranks they span" if "ties" in name else ""))
    return f"Spearman correlation: all {len(cases)} cases pass"
