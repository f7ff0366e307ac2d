"""Exercise checks of chapter 12, tree regularisation: average path length and mimic trees
(convention: `_common`; the student's function runs on every case before any expected value
is computed)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from helpers.course.checks._common import CheckFailed, _collect, _rng


def check_average_path_length(student: Callable, *, seed: int | None = None) -> str:
    """`student(tree, x [B, D]) -> APL` of a fitted scikit-learn decision tree, without
    `decision_path` (off limits while yours runs, with `treereg.average_path_length`).
    Cases: a single leaf (0 questions), a stump (1), the four-point tree of chapter 12,
    and trees on random data."""
    from sklearn.tree import BaseDecisionTree, DecisionTreeClassifier

    from helpers import treereg

    x4 = np.array([[0.0], [1.0], [2.0], [3.0]])
    cases = [
        (DecisionTreeClassifier().fit(x4, [1, 1, 1, 1]), x4, "a tree that is a single leaf", "do not count the leaf as a question"),
        (DecisionTreeClassifier().fit(x4, [0, 0, 1, 1]), x4, "a stump", "each input answers exactly one question"),
        (DecisionTreeClassifier(random_state=0).fit(x4, [0, 1, 1, 0]), x4, "the four-point tree of chapter 12", "count by hand"),
    ]
    rng = _rng(seed)
    for k in range(3):
        x = rng.uniform(size=(200, 2))
        y = (x[:, 0] + rng.normal(0, 0.2, 200)) > x[:, 1] ** 2
        cases.append((DecisionTreeClassifier(min_samples_leaf=5 * (k + 1), random_state=k).fit(x, y), x,
                      f"a tree on random data ({k + 1} of 3)", "average over the inputs, one path each"))
    outs = _collect(student, [(t, x) for t, x, *_ in cases], what="your average path length",
                    forbidden=(BaseDecisionTree.decision_path, treereg.average_path_length))
    for (tree, x, name, hint), got in zip(cases, outs, strict=True):
        err = abs(float(got) - treereg.average_path_length(tree, x))
        if err > 1e-5:  # a float32 mean of path lengths is within ~1e-6; a wrong count moves it by 1/N or more
            raise CheckFailed(f"on {name} your APL is off by {err:.4g}: {hint}")
    return f"average path length: all {len(cases)} trees pass"


def check_mimic_tree(student: Callable, *, seed: int | None = None) -> str:
    """`student(labels, x [B, D], min_samples_leaf) -> (fidelity, apl)`: fit a
    `DecisionTreeClassifier(min_samples_leaf=..., random_state=0)` to a model's predicted
    `labels [B]` at `x`, and return the share of inputs where the tree agrees with them
    and the tree's average path length. Against `treereg.mimic_tree`, `fidelity` and
    `average_path_length` (off limits while yours runs) on three decision rules."""
    from helpers import treereg

    rng = _rng(seed)
    x = rng.uniform(-2, 2, (400, 2))
    t = 0.3 if seed is None else float(rng.uniform(-1, 1))
    rules = [(np.zeros(400, int), "a constant model"), ((x[:, 0] > t).astype(int), "a threshold on x1"),
             ((x[:, 1] > x[:, 0] ** 2 - 1).astype(int), "a parabola")]
    cases = [(labels, name, leaf) for labels, name in rules for leaf in (5, 25)]
    outs = _collect(student, [(labels, x, leaf) for labels, _, leaf in cases], what="your mimic tree", raw=True,
                    forbidden=(treereg.mimic_tree, treereg.fidelity, treereg.average_path_length, treereg.network_mimic))
    for (labels, name, leaf), out in zip(cases, outs, strict=True):
        fid, apl = float(out[0]), float(out[1])
        tree = treereg.mimic_tree(x, labels, min_samples_leaf=leaf)
        want = (treereg.fidelity(tree, x, labels), treereg.average_path_length(tree, x))
        if abs(fid - want[0]) > 1e-6:  # float32 (jnp) shares are within ~1e-7; one input moves it by 1/400
            raise CheckFailed(f"for {name} with min_samples_leaf={leaf} your fidelity is off by {abs(fid - want[0]):.3g}: "
                              "fit the tree to the model's labels (random_state=0) and score it on the same inputs")
        if abs(apl - want[1]) > 1e-5:
            raise CheckFailed(f"for {name} with min_samples_leaf={leaf} your APL is off by {abs(apl - want[1]):.3g}: "
                              "count questions, not the leaf")
    return f"mimic trees: all {len(cases)} cases pass"
