"""Exercise checks of chapter 13, evaluating explanations: deletion curves and Spearman's rho
(convention: `_common`; the student's function runs on every case before any expected value
is computed)."""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

from helpers import sequences as seqs_lib
from helpers.course.checks._common import CheckFailed, _collect, _models, _peptides, _rng


def check_deletion_curve(student: Callable, *, seed: int | None = None) -> str:
    """`student(f, x [L, A], order [n]) -> logits [n + 1]`: f after deleting (padding in
    place) the first k residues of `order`, k = 0 .. n. Cases: an additive model, where the
    curve is f(x) minus cumulative sums of the residues' terms, and the course CNN against
    `evaluation.faithfulness_curve` (off limits while yours runs)."""
    from helpers import evaluation, perturbation

    linear, weights, cnn = _models(seed)
    rng = _rng(seed)
    peptides = _peptides(seed)
    cases = []
    for seq in peptides:
        x = jnp.asarray(seqs_lib.encode(seq))
        order = rng.permutation(len(seq))
        cases += [(linear, x, order, seq, "an additive model"), (cnn, x, order, seq, "the course CNN")]
    outs = _collect(student, [c[:3] for c in cases], what="your deletion curve",
                    forbidden=(evaluation.faithfulness_curve, evaluation.curve_masks, perturbation.make_game))
    for (model, x, order, seq, name), got in zip(cases, outs, strict=True):
        if model is linear:
            terms = weights[np.asarray(x).argmax(-1)[: len(seq)]]  # each residue's own term
            want = terms.sum() - np.concatenate([[0.0], np.cumsum(terms[order])])
        else:
            want = evaluation.faithfulness_curve(cnn, x, order)
        if got.shape != want.shape:
            raise CheckFailed(f"for {len(seq)} residues the curve has {len(seq) + 1} points (0 to {len(seq)} deleted); yours has shape {got.shape}")
        if np.abs(got - want).max() > 1e-4:
            k = int(np.argmax(np.abs(got - want)))
            raise CheckFailed(f"on {name}, after deleting {k} residues of {seq} your logit is off by {abs(got[k] - want[k]):.3g}: "
                              "delete residues in `order`, replacing each by the padding row")
    return f"deletion curve: all {len(cases)} cases pass"


def check_spearman(student: Callable, *, seed: int | None = None) -> str:
    """`student(a [n], b [n]) -> rho`: Spearman's rank correlation, the Pearson correlation
    of the ranks, tied values sharing the average of their ranks. Cases by hand and random
    scores with many ties against `scipy.stats.spearmanr` (off limits while yours runs)."""
    import scipy.stats

    rng = _rng(seed)
    names = ["increasing together", "reversed", "a monotone but non-linear relation (only ranks count)",
             "ties, which share their average rank"]
    cases = [([1, 2, 3, 4], [10, 20, 30, 40]), ([1, 2, 3, 4], [4, 3, 2, 1]), ([1, 2, 3, 4], [1, 4, 9, 16]),
             ([1, 1, 2, 3], [1, 2, 2, 3])]
    if seed is not None:  # the same relations under a random order and scale
        cases = [(np.asarray(a)[p] * s, np.asarray(b)[p]) for (a, b), p, s in
                 zip(cases, [rng.permutation(4) for _ in cases], rng.uniform(0.5, 5, 4), strict=True)]
    for k in range(3):
        cases.append((rng.integers(0, 5, 40), rng.integers(0, 5, 40)))
        names.append(f"random scores with many ties ({k + 1} of 3)")
    cases = [(np.asarray(a, float), np.asarray(b, float)) for a, b in cases]
    outs = _collect(student, cases, what="your Spearman correlation",
                    forbidden=(scipy.stats.spearmanr, scipy.stats.kendalltau))
    for (a, b), got, name in zip(cases, outs, names, strict=True):
        err = abs(float(got) - float(scipy.stats.spearmanr(a, b).statistic))
        if err > 1e-6:  # float32 (jnp) ranks and means land within ~2e-8; wrong tie ranks move rho by far more
            raise CheckFailed(f"for {name} your rho is off by {err:.3g}"
                              + (": give tied values the mean of the ranks they span" if "ties" in name else ""))
    return f"Spearman correlation: all {len(cases)} cases pass"
