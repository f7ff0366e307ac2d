"""Exercise checks of chapter 12, tree regularisation: average path length and mimic trees (convention: `_common`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from helpers.course.checks._common import CheckFailed, _run, _stub_or


def check_average_path_length(student: Callable) -> str:
    """`student(tree, x [B, D]) -> APL` of a fitted scikit-learn decision tree. Cases: a
    single leaf (0 questions), a stump (1), the four-point tree of chapter 12 (1.75 by
    hand), and trees on random data against `treereg.average_path_length`."""
    from sklearn.tree import DecisionTreeClassifier

    from helpers import treereg

    x4 = np.array([[0.0], [1.0], [2.0], [3.0]])
    cases = [
        (DecisionTreeClassifier().fit(x4, [1, 1, 1, 1]), x4, "a tree that is a single leaf", "do not count the leaf as a question"),
        (DecisionTreeClassifier().fit(x4, [0, 0, 1, 1]), x4, "a stump", "each input answers exactly one question"),
        (DecisionTreeClassifier(random_state=0).fit(x4, [0, 1, 1, 0]), x4, "the four-point tree of chapter 12", "count by hand: 1, 2, 2, 2"),
    ]
    rng = np.random.default_rng(0)
    for k in range(3):
        x = rng.uniform(size=(200, 2))
        y = (x[:, 0] + rng.normal(0, 0.2, 200)) > x[:, 1] ** 2
        cases.append((DecisionTreeClassifier(min_samples_leaf=5 * (k + 1), random_state=k).fit(x, y), x,
                      f"a tree on random data ({k + 1} of 3)", "average over the inputs, one path each"))
    for tree, x, name, hint in cases:
        got = float(_run(student, tree, x, what="your average path length"))
        want = treereg.average_path_length(tree, x)
        if abs(got - want) > 1e-9:
            raise CheckFailed(f"on {name} the APL is {want:.4g}, yours is {got:.4g}: {hint}")
    return f"average path length: all {len(cases)} trees pass"


def check_mimic_tree(student: Callable) -> str:
    """`student(labels, x [B, D], min_samples_leaf) -> (fidelity, apl)`: fit a
    `DecisionTreeClassifier(min_samples_leaf=..., random_state=0)` to a model's predicted
    `labels [B]` at `x`, and return the share of inputs where the tree agrees with them
    and the tree's average path length. Against `treereg.mimic_tree`, `fidelity` and
    `average_path_length` on three decision rules, from a constant to a parabola."""
    from helpers import treereg

    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, (400, 2))
    rules = [(np.zeros(400, int), "a constant model"), ((x[:, 0] > 0.3).astype(int), "a threshold on x1"),
             ((x[:, 1] > x[:, 0] ** 2 - 1).astype(int), "a parabola")]
    for labels, name in rules:
        for leaf in (5, 25):
            out = _stub_or(student, labels, x, leaf, what="your mimic tree")
            fid, apl = float(out[0]), float(out[1])
            tree = treereg.mimic_tree(x, labels, min_samples_leaf=leaf)
            want = (treereg.fidelity(tree, x, labels), treereg.average_path_length(tree, x))
            if abs(fid - want[0]) > 1e-9 or abs(apl - want[1]) > 1e-9:
                raise CheckFailed(f"for {name} with min_samples_leaf={leaf}, fidelity and APL are {want[0]:.3f} and "
                                  f"{want[1]:.3f}; yours are {fid:.3f} and {apl:.3f}: fit the tree to the model's labels "
                                  "(random_state=0), score it on the same inputs, count questions, not the leaf")
    return "mimic trees: all 6 cases pass"
