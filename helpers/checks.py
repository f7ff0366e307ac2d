"""Checks for exercises: run a student's implementation on cases whose answer is known and
explain a failure in words.

Each `check_*` takes the student's function, raises `CheckFailed` with a sentence that
names the case, the property that broke and by how much, and returns a one-line summary
when every case passes. A stub that raises `NotImplementedError` fails with "not written
yet", so a homework notebook shows what is left to do.
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

from helpers import attribution, shapley
from helpers import model as model_lib
from helpers import sequences as seqs_lib

PEPTIDES = ("GIGKFLHSAKKFGKAFVGEIMNS", "KWKLFKKIEK", "FLPLIGRVLSGIL")  # magainin 2, a synthetic AMP, temporin A


class CheckFailed(AssertionError):
    """The student's implementation broke a property the check names."""


def _run(student: Callable, *args, what: str) -> np.ndarray:
    try:
        out = student(*args)
    except NotImplementedError as e:
        raise CheckFailed(f"{what} is not written yet ({e})") from None
    out = np.asarray(out, dtype=float)
    if not np.isfinite(out).all():
        raise CheckFailed(f"{what} returned NaN or infinite values")
    return out


def _models() -> tuple[Callable, np.ndarray, Callable]:
    """The cases' two models: the linear hydropathy model with its weights `[A]` (a closed
    form for every method), and the course CNN."""
    params, _ = model_lib.load_pretrained()
    return model_lib.hydrophobicity_model(), np.asarray(model_lib.hydropathy_weights()), model_lib.predict_fn(params)


def _where(diff: np.ndarray, seq: str) -> str:
    pos = int(np.unravel_index(np.argmax(np.abs(diff)), diff.shape)[0])
    return f"residue {pos + 1} ({seq[pos] if pos < len(seq) else 'padding'}) of {seq}"


def check_integrated_gradients(student: Callable, *, steps: int = 64) -> str:
    """`student(f, x [L, A], baseline [L, A], steps) -> attributions [L, A]`.

    Cases: a linear model, where IG is exactly (x - baseline) x gradient; the course CNN
    from the padding baseline, where the attributions must add up to f(x) - f(baseline)
    (completeness) and agree with `attribution.integrated_gradients`."""
    linear, weights, cnn = _models()
    worst_gap = 0.0
    for seq in PEPTIDES:
        x = jnp.asarray(seqs_lib.encode(seq))
        zero = jnp.zeros_like(x)
        a = _run(student, linear, x, zero, steps, what="your integrated gradients")
        if a.shape != x.shape:
            raise CheckFailed(f"your attributions have shape {a.shape}; they must have the input's shape {tuple(x.shape)} [L, A]")
        diff = a - np.asarray(x) * weights
        if np.abs(diff).max() > 1e-4:
            raise CheckFailed(
                f"on a linear model IG is exactly (x - baseline) x gradient, but yours differs by "
                f"{np.abs(diff).max():.3g} at {_where(diff, seq)}: check the (x - baseline) factor")
        pad = attribution.make_baseline("padding", x)
        a = _run(student, cnn, x, pad, steps, what="your integrated gradients")
        fx, fb = np.asarray(cnn(jnp.stack([x, pad])), dtype=float)
        delta = fx - fb
        gap = float(a.sum()) - delta
        worst_gap = max(worst_gap, abs(gap))
        if abs(gap) > 0.05 * max(1.0, abs(delta)):
            raise CheckFailed(
                f"your IG does not satisfy completeness: gap {gap:.2f} on peptide {seq} "
                f"(f(x) - f(baseline) = {delta:.2f}); check the quadrature weights (they must sum to 1) "
                f"and that the path runs from the baseline to x")
        ref = np.asarray(attribution.integrated_gradients(cnn, x, pad, steps=steps).attributions)
        diff = a - ref
        if np.abs(diff).max() > 0.05 * np.abs(ref).max() + 1e-3:
            raise CheckFailed(
                f"your attributions differ from the reference by {np.abs(diff).max():.3g} at "
                f"{_where(diff, seq)} (the largest reference value is {np.abs(ref).max():.3g})")
    return f"integrated gradients: all {2 * len(PEPTIDES)} cases pass (largest completeness gap {worst_gap:.2g})"


def check_shapley(student: Callable) -> str:
    """`student(v, n) -> phi [n]`, where `v(masks [C, n] bool) -> values [C]` is a
    coalition game of n players. Cases: an additive game (each player's value is its own
    term), a game where two players only count together (they split it, the others get
    0), and a random game of 6 players against brute force (`shapley.shapley_from_values`)."""
    rng = np.random.default_rng(0)
    terms = rng.normal(size=5)
    additive = (lambda m: np.asarray(m, float) @ terms, 5, terms, "an additive game v(S) = sum of the terms in S")
    both = (lambda m: (np.asarray(m)[:, 0] & np.asarray(m)[:, 2]).astype(float), 4, np.array([0.5, 0.0, 0.5, 0.0]),
            "a game worth 1 when players 1 and 3 are both present")
    table = rng.normal(size=2**6)
    bits = 1 << np.arange(6)
    random = (lambda m: table[np.asarray(m, int) @ bits], 6, shapley.shapley_from_values(table, 6), "a random game of 6 players")
    for v, n, expected, name in (additive, both, random):
        phi = _run(student, v, n, what="your Shapley values")
        if phi.shape != (n,):
            raise CheckFailed(f"for {name} you returned shape {phi.shape}; expected one value per player, ({n},)")
        full, empty = float(v(np.ones((1, n), bool))[0]), float(v(np.zeros((1, n), bool))[0])
        gap = float(phi.sum()) - (full - empty)
        if abs(gap) > 1e-6:
            raise CheckFailed(f"your values break efficiency on {name}: they sum to {phi.sum():.4f}, "
                              f"but v(all) - v(none) = {full - empty:.4f} (gap {gap:.3g})")
        i = int(np.argmax(np.abs(phi - expected)))
        if abs(phi[i] - expected[i]) > 1e-6:
            raise CheckFailed(f"on {name}, player {i + 1} should get {expected[i]:.4f}, yours gets {phi[i]:.4f}; "
                              "check the weights |S|! (n - |S| - 1)! / n!")
    return "Shapley values: all 3 games pass (efficiency and exact values)"


def check_gradient_x_input(student: Callable) -> str:
    """`student(f, x [L, A]) -> gradient x input [L, A]`. Cases: a linear model, where it is
    x times the weights, and the course CNN against `attribution.gradient_x_input`."""
    linear, weights, cnn = _models()
    for seq in PEPTIDES:
        x = jnp.asarray(seqs_lib.encode(seq))
        a = _run(student, linear, x, what="your gradient x input")
        if a.shape != x.shape:
            raise CheckFailed(f"your attributions have shape {a.shape}; they must have the input's shape {tuple(x.shape)} [L, A]")
        diff = a - np.asarray(x) * weights
        if np.abs(diff).max() > 1e-5:
            raise CheckFailed(f"on a linear model gradient x input is x times the weights, but yours differs by "
                              f"{np.abs(diff).max():.3g} at {_where(diff, seq)}")
        ref = np.asarray(attribution.gradient_x_input(cnn, x))
        diff = _run(student, cnn, x, what="your gradient x input") - ref
        if np.abs(diff).max() > 1e-4 * max(1.0, np.abs(ref).max()):
            raise CheckFailed(f"on the course CNN yours differs from the reference by {np.abs(diff).max():.3g} at "
                              f"{_where(diff, seq)}: is the gradient taken of the logit of this one peptide?")
    return f"gradient x input: all {2 * len(PEPTIDES)} cases pass"


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


def check_occlusion(student: Callable) -> str:
    """`student(f, x [L, A]) -> [n]`: for each residue, f(x) minus f with that residue
    deleted in place (its row replaced by the padding row). Cases: a linear model (the
    drop is the residue's own term) and the course CNN against `perturbation.occlusion`."""
    from helpers import perturbation

    linear, weights, cnn = _models()
    for seq in PEPTIDES:
        x = jnp.asarray(seqs_lib.encode(seq))
        got = _run(student, linear, x, what="your occlusion")
        want = weights[np.asarray(x).argmax(-1)[: len(seq)]]  # each residue's own term
        if got.shape != want.shape:
            raise CheckFailed(f"one score per residue: {seq} has {len(seq)} residues, your scores have shape {got.shape}")
        if np.abs(got - want).max() > 1e-5:
            raise CheckFailed(f"on a linear model deleting a residue removes exactly its term, but yours differs by "
                              f"{np.abs(got - want).max():.3g} at {_where(got - want, seq)}: replace the row by the "
                              "padding row (channel 0 set to 1), not by zeros")
        want = perturbation.occlusion(cnn, x)
        got = _run(student, cnn, x, what="your occlusion")
        if np.abs(got - want).max() > 1e-4:
            raise CheckFailed(f"on the course CNN yours differs from the reference by {np.abs(got - want).max():.3g} at "
                              f"{_where(got - want, seq)}")
    return f"occlusion: all {2 * len(PEPTIDES)} cases pass"


def check_edit_distance(student: Callable) -> str:
    """`student(a, b) -> int`, the Levenshtein distance. Cases by hand and random peptide
    pairs against `counterfactual.edit_distance`."""
    from helpers import counterfactual

    cases = [("", "KLW", 3, "from the empty string (insert everything)"), ("KLW", "KLW", 0, "identical peptides"),
             ("KLW", "KAW", 1, "one substitution"), ("KLAW", "KLW", 1, "one deletion"),
             ("GIGK", "IGKG", 2, "a shift (one deletion and one insertion)")]
    rng = np.random.default_rng(0)
    for _ in range(5):
        a = "".join(rng.choice(list(seqs_lib.AMINO_ACIDS), rng.integers(3, 12)))
        b = "".join(rng.choice(list(a + "KL"), rng.integers(3, 12)))
        cases.append((a, b, counterfactual.edit_distance(a, b), f"random pair {a} / {b}"))
    for a, b, want, name in cases:
        got = int(_run(student, a, b, what="your edit distance"))
        if got != want:
            raise CheckFailed(f"for {name} ({a!r} -> {b!r}) the distance is {want}, yours is {got}")
    return f"edit distance: all {len(cases)} cases pass"
