"""Checks for exercises: run a student's implementation on cases whose answer is known and
explain a failure in words.

Each `check_*` takes the student's function, raises `CheckFailed` with a sentence that
names the case, the property that broke and by how much, and returns a one-line summary
when every case passes. A stub that raises `NotImplementedError` fails with "not written
yet", so a homework notebook shows what is left to do.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from helpers import attribution, shapley
from helpers import model as model_lib
from helpers import sequences as seqs_lib
from helpers.course.checks._common import CheckFailed, _run, _stub_or  # noqa: F401  (re-exported)

PEPTIDES = ("GIGKFLHSAKKFGKAFVGEIMNS", "KWKLFKKIEK", "FLPLIGRVLSGIL")  # magainin 2, a synthetic AMP, temporin A


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
    masked in place (its row replaced by the padding row). Cases: a linear model (the
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


# ----------------------------------------------------------------------------- chapter 1


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


# ----------------------------------------------------------------------------- chapter 2


def check_finite_differences(student: Callable, *, eps: float = 1e-2) -> str:
    """`student(f, x [L, A], eps) -> [L, A]`: the central difference (f(x + eps e) -
    f(x - eps e)) / (2 eps) for every entry e, in batched calls. Cases: the linear model
    (exact) and a smooth nonlinear model (sum over positions of tanh units), against
    `jax.grad`. (Not the CNN: its max-pooling has kinks, where a difference quotient
    straddling one averages two slopes, a lesson of its own.)"""
    linear, _, _ = _models()
    w = jax.random.normal(jax.random.PRNGKey(0), (seqs_lib.NUM_CHANNELS, 8))
    u = jax.random.normal(jax.random.PRNGKey(1), (8,))
    smooth = jax.jit(lambda xb: jnp.tanh(xb @ w).sum(axis=1) @ u)
    for seq in PEPTIDES[1:]:
        x = jnp.asarray(seqs_lib.encode(seq, length=len(seq) + 2))
        for model, name, tol in ((linear, "the linear model", 1e-3), (smooth, "a smooth nonlinear model", 2e-3)):
            got = _run(student, model, x, eps, what="your finite differences")
            if got.shape != x.shape:
                raise CheckFailed(f"one difference per entry of x: expected shape {tuple(x.shape)} [L, A], got {got.shape}")
            want = np.asarray(jax.grad(lambda z, model=model: model(z[None])[0])(x))
            diff = got - want
            if np.abs(diff).max() > tol:
                hint = ("on a linear model every difference quotient is exact: is it divided by 2 eps?" if model is linear
                        else "a one-sided difference (f(x + eps e) - f(x)) / eps has an O(eps) error; use the central one")
                raise CheckFailed(f"on {name} your differences miss the gradient by {np.abs(diff).max():.2g} at "
                                  f"{_where(diff, seq)}: {hint}")
    return f"finite differences: all {2 * (len(PEPTIDES) - 1)} cases pass (they match jax.grad)"


# ----------------------------------------------------------------------------- chapter 3


def check_path_rule(student: Callable) -> str:
    """`student(steps, rule) -> (alphas [K], weights [K])` for rule in left, right,
    midpoint, trapezoid, against `attribution.path_rule`; also: the weights integrate
    1 and alpha exactly (every rule) and alpha^2 within its error bound."""
    for rule in attribution.RULES:
        for steps in (1, 4, 64):
            out = _stub_or(student, steps, rule, what="your path rule")
            alphas, weights = (np.asarray(v, dtype=float) for v in out)
            ref_a, ref_w = (np.asarray(v, dtype=float) for v in attribution.path_rule(steps, rule))
            if alphas.shape != ref_a.shape or weights.shape != ref_w.shape:
                raise CheckFailed(f"the {rule} rule with {steps} steps has {len(ref_a)} points; yours has "
                                  f"{alphas.shape} alphas and {weights.shape} weights")
            if abs(weights.sum() - 1.0) > 1e-6:
                raise CheckFailed(f"your {rule} weights for {steps} steps sum to {weights.sum():.4f}; the weights of a "
                                  "quadrature rule on [0, 1] must sum to 1 (else IG misses completeness by that factor)")
            order = np.argsort(ref_a)
            got = np.stack([alphas, weights], 1)[np.argsort(alphas)]
            if np.abs(got - np.stack([ref_a, ref_w], 1)[order]).max() > 1e-6:
                raise CheckFailed(f"your {rule} rule with {steps} steps puts points {np.round(alphas[:4], 4)} with "
                                  f"weights {np.round(weights[:4], 4)}; expected {np.round(ref_a[:4], 4)} and {np.round(ref_w[:4], 4)}")
    return f"path rules: all {len(attribution.RULES)} rules pass for 1, 4 and 64 steps"


# ----------------------------------------------------------------------------- chapter 4


def check_clip_renormalise(student: Callable) -> str:
    """`student(x [..., L, A]) -> [..., L, A]`: each position clipped at 0 and divided by
    its sum; a position clipped to all zeros becomes uniform. Against
    `attribution.project_to_simplex_rows`."""
    rng = np.random.default_rng(0)
    one_hot = seqs_lib.encode_batch(PEPTIDES, length=30)
    cases = [(one_hot, "one-hot peptides (already on the simplex: unchanged)"),
             (one_hot + rng.normal(0, 0.15, one_hot.shape), "one-hot peptides plus noise"),
             (-np.abs(rng.normal(size=(4, 21))), "positions with every channel negative (uniform after clipping)")]
    for x, name in cases:
        x = np.asarray(x, np.float32)
        got = _run(student, jnp.asarray(x), what="your clip-and-renormalise")
        want = np.asarray(attribution.project_to_simplex_rows(jnp.asarray(x)))
        if got.shape != want.shape:
            raise CheckFailed(f"for {name} the output must keep the input's shape {want.shape}, got {got.shape}")
        if np.abs(got - want).max() > 1e-5:
            i = np.unravel_index(np.argmax(np.abs(got - want)), got.shape)
            raise CheckFailed(f"for {name}, entry {i} should be {want[i]:.4f}, yours is {got[i]:.4f}: clip at 0, then "
                              "divide each position by its own sum (over the last axis); all zeros -> 1/21 each")
    return f"clip and renormalise: all {len(cases)} cases pass"


def check_smoothgrad(student: Callable) -> str:
    """`student(f, x [L, A], key, n, sigma) -> [L, A]`: the mean gradient over n copies
    x + N(0, sigma^2) on every entry (the paper's SmoothGrad, no projection). Cases: the
    linear model (every copy has the same gradient), sigma = 0 (the plain gradient), and
    the course CNN against `attribution.smoothgrad` with 4 times as many samples."""
    linear, weights, cnn = _models()
    x = jnp.asarray(seqs_lib.encode(PEPTIDES[1]))
    got = _run(student, linear, x, jax.random.PRNGKey(0), 16, 0.3, what="your SmoothGrad")
    if got.shape != x.shape:
        raise CheckFailed(f"SmoothGrad returns one value per input entry, shape {tuple(x.shape)} [L, A]; yours has {got.shape}")
    if np.abs(got - np.broadcast_to(weights, x.shape)).max() > 1e-5:
        raise CheckFailed("on the linear model every noisy copy has the same gradient (the weights), so SmoothGrad must "
                          "equal it: return the mean of the gradients, not of gradient x input or of the noisy inputs")
    got = _run(student, cnn, x, jax.random.PRNGKey(0), 4, 0.0, what="your SmoothGrad")
    want = np.asarray(jax.grad(lambda z: cnn(z[None])[0])(x))
    if np.abs(got - want).max() > 1e-5:
        raise CheckFailed("with sigma = 0 every copy is x itself, so SmoothGrad is the plain gradient; yours differs by "
                          f"{np.abs(got - want).max():.2g}")
    worst = 0.0
    for k, seq in enumerate(PEPTIDES):
        x = jnp.asarray(seqs_lib.encode(seq))
        got = _run(student, cnn, x, jax.random.PRNGKey(k), 1024, 0.15, what="your SmoothGrad")
        want = np.asarray(attribution.smoothgrad(cnn, x, jax.random.PRNGKey(100 + k), n=4096, sigma=0.15,
                                                 project=False, perturb_padding=True))
        err = float(np.linalg.norm(got - want) / np.linalg.norm(want))
        worst = max(worst, err)
        if err > 0.35:  # sampling alone: at most 0.21 seen over seeds; the plain gradient: 0.9 to 3.2
            raise CheckFailed(f"on the course CNN and {seq} your SmoothGrad (1024 samples, sigma 0.15) is {err:.0%} away "
                              "from the reference (4096 samples), more than sampling explains: add noise N(0, sigma^2) to "
                              "every entry (padding included) and average the gradients")
    return f"SmoothGrad: all {2 + len(PEPTIDES)} cases pass (largest relative distance to the reference {worst:.2f})"


# ----------------------------------------------------------------------------- chapter 5


def _reference_multipliers(act: Callable, z: jax.Array, z0: jax.Array) -> np.ndarray:
    """The rescale multipliers of `attribution.rescale_activation` (one backward pass)."""
    paired = attribution.rescale_activation(act)
    _, pullback = jax.vjp(paired, jnp.concatenate([z, z0]))
    return np.asarray(pullback(jnp.ones((2 * len(z),) + z.shape[1:], z.dtype))[0][: len(z)])


def check_rescale_multiplier(student: Callable) -> str:
    """`student(act, z [...], z0 [...]) -> [...]`: DeepLIFT's rescale multiplier of each
    unit, (act(z) - act(z0)) / (z - z0), and act'(z) where z and z0 (nearly) coincide.
    Cases: tanh and ReLU on random pairs, equal pairs, and pairs 1e-9 apart."""
    rng = np.random.default_rng(0)
    z = jnp.asarray(rng.normal(0, 2, (64,)), jnp.float32)
    z0 = jnp.asarray(rng.normal(0, 2, (64,)), jnp.float32)
    relu_cases = jnp.array([-1.0, 2.0, -3.0]), jnp.array([1.0, 1.0, -1.0])  # secants 0.5, 1, 0
    cases = [(jnp.tanh, z, z0, "tanh on random pairs"), (jax.nn.relu, z, z0, "ReLU on random pairs"),
             (jax.nn.relu, *relu_cases, "ReLU from -1 to 1, 1 to 2 and -1 to -3 (secants 0.5, 1 and 0)"),
             (jnp.tanh, z, z, "tanh with z = z0 (the secant is 0 / 0: use the derivative)"),
             (jnp.tanh, z, z + 1e-9, "tanh with z0 1e-9 from z")]
    for act, a, b, name in cases:
        got = _run(student, act, a, b, what="your rescale multiplier")
        want = _reference_multipliers(act, a, b)
        if got.shape != want.shape:
            raise CheckFailed(f"one multiplier per unit: for {name} expected shape {want.shape}, got {got.shape}")
        if np.abs(got - want).max() > 1e-4:
            i = int(np.argmax(np.abs(got - want)))
            raise CheckFailed(f"for {name}, unit {i} (z = {float(a[i]):.3g}, z0 = {float(b[i]):.3g}) should get "
                              f"{want[i]:.4f}, yours gets {got[i]:.4f}")
    return f"rescale multipliers: all {len(cases)} cases pass"


def check_deeplift_dense(student: Callable) -> str:
    """`student(w1 [D, H], w2 [H], x [D], x0 [D]) -> [D]`: DeepLIFT (rescale rule) of
    y = tanh(x @ w1) @ w2 from reference x0. Cases: random networks; the attributions
    must add up to y(x) - y(x0) (summation to delta, exact here) and match the rescale
    rule of `attribution.rescale_activation`."""
    for k, (d, h) in enumerate(((3, 2), (8, 16), (21, 32))):
        keys = jax.random.split(jax.random.PRNGKey(k), 4)
        w1, w2 = jax.random.normal(keys[0], (d, h)), jax.random.normal(keys[1], (h,))
        x, x0 = jax.random.normal(keys[2], (d,)), jax.random.normal(keys[3], (d,))
        got = _run(student, w1, w2, x, x0, what="your DeepLIFT")
        if got.shape != (d,):
            raise CheckFailed(f"one attribution per input: expected shape ({d},), got {got.shape}")
        delta = float((jnp.tanh(x @ w1) - jnp.tanh(x0 @ w1)) @ w2)
        if abs(got.sum() - delta) > 1e-4 * max(1.0, abs(delta)):
            raise CheckFailed(f"on a {d}-{h}-1 tanh network your attributions sum to {got.sum():.4f}, but y(x) - y(x0) = "
                              f"{delta:.4f}: with secant multipliers the sum is exact (gradients at x or x0 are not)")
        m = _reference_multipliers(jnp.tanh, (x @ w1)[None], (x0 @ w1)[None])[0]
        want = np.asarray((x - x0) * (w1 @ (m * w2)))
        if np.abs(got - want).max() > 1e-4 * max(1.0, np.abs(want).max()):
            raise CheckFailed(f"on a {d}-{h}-1 tanh network your attributions sum correctly but differ from the rescale "
                              f"rule's by {np.abs(got - want).max():.3g}: multiply (x - x0) by w1 @ (m * w2), m the hidden units' secants")
    return "DeepLIFT on dense tanh networks: all 3 pass (summation to delta and the rescale rule)"


# ----------------------------------------------------------------------------- chapter 6


def check_window_occlusion(student: Callable) -> str:
    """`student(f, x [L, A], window) -> [n]`: each window of `window` consecutive residues
    masked in place (stride 1), and each residue's score the mean drop of the windows
    that cover it (Captum's convention). Cases: the linear model and the course CNN
    against `perturbation.occlusion`, windows 1, 3 and 5."""
    from helpers import perturbation

    linear, _, cnn = _models()
    for model, name in ((linear, "the linear model"), (cnn, "the course CNN")):
        for seq in PEPTIDES:
            x = jnp.asarray(seqs_lib.encode(seq))
            for window in (1, 3, 5):
                got = _run(student, model, x, window, what="your windowed occlusion")
                want = perturbation.occlusion(model, x, window=window)
                if got.shape != want.shape:
                    raise CheckFailed(f"one score per residue: {seq} has {len(seq)} residues, yours has shape {got.shape}")
                if np.abs(got - want).max() > 1e-4:
                    raise CheckFailed(f"on {name}, window {window}: your score for {_where(got - want, seq)} is off by "
                                      f"{np.abs(got - want).max():.3g}: average (not add) the drops of the windows "
                                      "covering each residue; the end residues are covered by fewer windows")
    return "windowed occlusion: all 18 cases pass"


# ----------------------------------------------------------------------------- chapter 7


def check_permutation_shapley(student: Callable) -> str:
    """`student(v, n, rng, n_permutations) -> phi [n]`, Shapley values estimated from random
    orders of the players (`rng` a `numpy.random.Generator`). Cases: efficiency must hold
    exactly for any sample; an additive game is exact for any order; the two-player game
    and a random game of 6 players against the exact values within sampling error."""
    rng = np.random.default_rng(0)
    terms = rng.normal(size=5)
    table = rng.normal(size=2**6)
    bits = 1 << np.arange(6)
    games = [(lambda m: np.asarray(m, float) @ terms, 5, terms, 0.0, "an additive game"),
             (lambda m: (np.asarray(m)[:, 0] & np.asarray(m)[:, 2]).astype(float), 4, np.array([0.5, 0.0, 0.5, 0.0]),
              0.08, "a game worth 1 when players 1 and 3 are both present"),
             (lambda m: table[np.asarray(m, int) @ bits], 6, shapley.shapley_from_values(table, 6), 0.15, "a random game of 6 players")]
    for v, n, exact, tol, name in games:
        phi = _run(student, v, n, np.random.default_rng(1), 2000, what="your permutation Shapley values")
        if phi.shape != (n,):
            raise CheckFailed(f"for {name} you returned shape {phi.shape}; expected one value per player, ({n},)")
        full, empty = float(v(np.ones((1, n), bool))[0]), float(v(np.zeros((1, n), bool))[0])
        if abs(phi.sum() - (full - empty)) > 1e-6:
            raise CheckFailed(f"on {name} your estimates sum to {phi.sum():.4f}, not v(all) - v(none) = {full - empty:.4f}: "
                              "along one order the marginal contributions add up exactly, so any average of whole orders does too")
        i = int(np.argmax(np.abs(phi - exact)))
        if abs(phi[i] - exact[i]) > tol + 1e-9:
            raise CheckFailed(f"on {name} with 2000 orders, player {i + 1} gets {phi[i]:.3f}; the exact value is {exact[i]:.3f}, "
                              f"further than sampling explains (tolerance {tol}): each order must be uniformly random, "
                              "and each player credited with v(its predecessors and it) - v(its predecessors)")
    return "permutation Shapley values: all 3 games pass (efficiency exact, values within sampling error)"


# ----------------------------------------------------------------------------- chapter 8


def check_weighted_ridge(student: Callable) -> str:
    """`student(z [S, k], y [S], w [S], alpha) -> (coef [k], intercept)`: the minimiser of
    sum_s w_s (y_s - z_s . coef - intercept)^2 + alpha |coef|^2 (intercept not penalised).
    Cases: random switches against scikit-learn's `Ridge(alpha).fit(z, y, sample_weight=w)`,
    alpha 0, 1 and 10, with equal and with very unequal weights."""
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    for alpha in (0.0, 1.0, 10.0):
        z = (rng.uniform(size=(200, 6)) < 0.6).astype(float)
        y = z @ rng.normal(size=6) + 0.5 + rng.normal(0, 0.3, 200)
        for w, wname in ((np.ones(200), "equal weights"), (np.exp(-3 * rng.uniform(size=200) * np.arange(200) / 200), "unequal weights")):
            out = _stub_or(student, z, y, w, alpha, what="your weighted ridge")
            coef, intercept = np.asarray(out[0], float), float(out[1])
            ref = Ridge(alpha=alpha).fit(z, y, sample_weight=w)
            if coef.shape != ref.coef_.shape:
                raise CheckFailed(f"one coefficient per column of z: expected shape {ref.coef_.shape}, got {coef.shape}")
            if np.abs(coef - ref.coef_).max() > 1e-6 or abs(intercept - ref.intercept_) > 1e-6:
                hint = ("centre z and y by their *weighted* means, so the intercept is not penalised" if wname == "unequal weights"
                        else "solve (Zc^T W Zc + alpha I) coef = Zc^T W yc on centred data, then intercept = mean(y) - mean(z) . coef")
                raise CheckFailed(f"alpha = {alpha}, {wname}: your coefficients {np.round(coef, 4)} (intercept {intercept:.4f}) "
                                  f"differ from {np.round(ref.coef_, 4)} (intercept {ref.intercept_:.4f}): {hint}")
    return "weighted ridge: all 6 cases pass (they match scikit-learn)"


def check_lime_least_squares(student: Callable) -> str:
    """`student(f, x [L, A], rng, n_samples, kernel_width) -> [n]`: LIME with an unpenalised
    weighted least-squares surrogate (lime's sampler and kernel of chapter 8). Cases: the
    linear model, where the surrogate recovers each residue's term exactly, and the course
    CNN, where the ranking must match `surrogate.lime` (alpha = 0) up to sampling noise."""
    from helpers import surrogate

    linear, weights, cnn = _models()
    for seq in PEPTIDES:
        x = jnp.asarray(seqs_lib.encode(seq))
        got = _run(student, linear, x, np.random.default_rng(0), 500, 0.25, what="your LIME")
        want = weights[np.asarray(x).argmax(-1)[: len(seq)]]
        if got.shape != want.shape:
            raise CheckFailed(f"one coefficient per residue: {seq} has {len(seq)}, yours has shape {got.shape}")
        if np.abs(got - want).max() > 1e-3:
            raise CheckFailed(f"on the linear model the surrogate must recover each residue's own term exactly, but yours "
                              f"is off by {np.abs(got - want).max():.3g} at {_where(got - want, seq)}: sample which residues "
                              "to keep, mask the others in place (padding row), and fit the logits by weighted least squares")
    worst = 1.0
    for k, seq in enumerate(PEPTIDES):
        x = jnp.asarray(seqs_lib.encode(seq))
        got = _run(student, cnn, x, np.random.default_rng(k), 4000, 0.25, what="your LIME")
        want = surrogate.lime(cnn, x, jax.random.PRNGKey(k), n_samples=4000, kernel_width=0.25, alpha=0.0).coefficients
        rho = float(np.corrcoef(np.argsort(np.argsort(got)), np.argsort(np.argsort(want)))[0, 1])
        worst = min(worst, rho)
        if rho < 0.7:
            raise CheckFailed(f"on the course CNN and {seq} your coefficients rank the residues differently from the "
                              f"reference (Spearman {rho:.2f} < 0.7): check the kernel sqrt(exp(-d^2 / w^2)) with d the "
                              "fraction of residues removed, and that sample s is weighted by it")
    return f"LIME (least squares): all {2 * len(PEPTIDES)} cases pass (lowest rank correlation on the CNN {worst:.2f})"


# ----------------------------------------------------------------------------- chapter 9


def _logistic_problem(seed: int, n: int = 50, p: int = 6):
    """A small L2-regularised logistic regression loss `loss(theta [p + 1])` on random data."""
    kx, ky = jax.random.split(jax.random.PRNGKey(seed))
    x = jax.random.normal(kx, (n, p))
    y = (jax.random.uniform(ky, (n,)) < 0.5).astype(jnp.float32)

    def loss(theta):
        z = x @ theta[:p] + theta[p]
        return jnp.mean(jax.nn.softplus(z) - y * z) + 0.5e-2 * jnp.sum(theta[:p] ** 2)

    return loss


def check_hvp(student: Callable) -> str:
    """`student(loss, theta [P], v [P]) -> H v`, H the Hessian of the scalar `loss` at theta,
    without forming H. Cases: quadratics 0.5 theta^T A theta (H v = A v exactly) and
    logistic-regression losses against `jax.hessian`."""
    rng = np.random.default_rng(0)
    for k in range(3):
        p = 4 + 3 * k
        m = rng.normal(size=(p, p))
        a = jnp.asarray(m @ m.T + np.eye(p), jnp.float32)
        theta, v = (jnp.asarray(rng.normal(size=p), jnp.float32) for _ in range(2))
        got = _run(student, lambda t, a=a: 0.5 * t @ a @ t, theta, v, what="your Hessian-vector product")
        want = np.asarray(a @ v)
        if got.shape != want.shape:
            raise CheckFailed(f"H v has the parameters' shape ({p},); yours has {got.shape}")
        if np.abs(got - want).max() > 1e-3 * max(1.0, np.abs(want).max()):
            raise CheckFailed(f"for the quadratic 0.5 theta^T A theta (H = A, {p} parameters) your H v is off by "
                              f"{np.abs(got - want).max():.3g}: differentiate the gradient along v (jax.jvp of jax.grad)")
        loss = _logistic_problem(k)
        theta, v = (jnp.asarray(rng.normal(size=7), jnp.float32) for _ in range(2))
        got = _run(student, loss, theta, v, what="your Hessian-vector product")
        want = np.asarray(jax.hessian(loss)(theta) @ v)
        if np.abs(got - want).max() > 1e-3 * max(1.0, np.abs(want).max()):
            raise CheckFailed(f"for a logistic-regression loss your H v is off by {np.abs(got - want).max():.3g} "
                              f"(largest entry {np.abs(want).max():.3g})")
    return "Hessian-vector products: all 6 cases pass"


def check_conjugate_gradient(student: Callable) -> str:
    """`student(matvec, b [P], tol, maxiter) -> x [P]` solving A x = b for symmetric
    positive definite A, given only `matvec(v) = A v`. Cases: the identity, random SPD
    matrices, and a 300-dimensional matrix with 5 distinct eigenvalues, which CG solves in
    5 steps: more than maxiter + 1 = 31 matrix-vector products there means the matrix
    was built column by column, not solved by CG."""
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(300, 300)))
    clustered = (q * np.repeat([1.0, 2.0, 5.0, 10.0, 50.0], 60)) @ q.T
    cases = [(np.eye(5), 100, "the identity"), (None, 100, "a random 20 x 20 SPD matrix (condition number 100)"),
             (clustered, 30, "a 300 x 300 matrix with 5 distinct eigenvalues")]
    for a, maxiter, name in cases:
        if a is None:
            u, _ = np.linalg.qr(rng.normal(size=(20, 20)))
            a = (u * np.geomspace(1, 100, 20)) @ u.T
        a = jnp.asarray(a, jnp.float32)
        b = jnp.asarray(rng.normal(size=a.shape[0]), jnp.float32)
        calls = [0]

        def matvec(v, a=a, calls=calls):
            calls[0] += 1
            return a @ v

        got = _run(student, matvec, b, 1e-5, maxiter, what="your conjugate gradients")
        if got.shape != b.shape:
            raise CheckFailed(f"for {name} x must have b's shape {b.shape}; yours has {got.shape}")
        residual = float(np.linalg.norm(np.asarray(a @ jnp.asarray(got, jnp.float32) - b)) / np.linalg.norm(np.asarray(b)))
        if residual > 1e-4:
            raise CheckFailed(f"for {name} your x leaves a relative residual |A x - b| / |b| = {residual:.2g} "
                              "(asked for 1e-5): check the step alpha = r.r / p.Ap and the direction update p = r + beta p")
        if calls[0] > maxiter + 1:
            raise CheckFailed(f"for {name} you called matvec {calls[0]} times with maxiter = {maxiter}: CG needs one "
                              "product per iteration (plus one for a final residual), never the whole matrix")
    return "conjugate gradients: all 3 systems pass (solved to 1e-4)"


# ----------------------------------------------------------------------------- chapter 10


def check_best_substitution(student: Callable) -> str:
    """`student(f, sequence) -> (position, amino_acid, logit)`: among the 19 n single
    substitutions of the peptide, the one with the lowest logit; position counts from 1.
    Cases: the linear model (the most hydrophobic residue replaced by arginine, R) and the
    course CNN against `counterfactual.substitution_scan`."""
    from helpers import counterfactual

    linear, _, cnn = _models()
    for model, name in ((linear, "the linear hydropathy model"), (cnn, "the course CNN")):
        for seq in PEPTIDES:
            scan = counterfactual.substitution_scan(model, seq)
            logits = scan.logits.copy()
            logits[np.arange(len(seq)), [seqs_lib.AMINO_ACIDS.index(a) for a in seq]] = np.inf  # not a substitution
            i, a = np.unravel_index(np.argmin(logits), logits.shape)
            want = (int(i) + 1, seqs_lib.AMINO_ACIDS[a], float(logits[i, a]))
            out = _stub_or(student, model, seq, what="your best substitution")
            if not (isinstance(out, tuple) and len(out) == 3):
                raise CheckFailed(f"return a tuple (position, amino_acid, logit), e.g. {want[:2] + (round(want[2], 3),)}; got {out!r}")
            pos, aa, logit = int(out[0]), str(out[1]), float(out[2])
            valid = 1 <= pos <= len(seq) and aa in seqs_lib.AMINO_ACIDS and aa != seq[pos - 1]
            theirs = float(logits[pos - 1, seqs_lib.AMINO_ACIDS.index(aa)]) if valid else np.inf
            if not valid or theirs > want[2] + 1e-5 or abs(logit - theirs) > 1e-4:  # ties: any best one will do
                off_by_one = 0 <= pos < len(seq) and aa in seqs_lib.AMINO_ACIDS and logits[pos, seqs_lib.AMINO_ACIDS.index(aa)] <= want[2] + 1e-5
                hint = " (positions count from 1)" if off_by_one else ""
                raise CheckFailed(f"on {name} and {seq} the lowest logit, {want[2]:.3f}, comes from {seq[want[0] - 1]}{want[0]}"
                                  f"{want[1]}; yours is {seq[pos - 1] if 1 <= pos <= len(seq) else '?'}{pos}{aa} "
                                  f"with {logit:.3f}{hint}")
    return f"best single substitution: all {2 * len(PEPTIDES)} cases pass"


# ----------------------------------------------------------------------------- chapter 11


def check_centre_shapes(student: Callable) -> str:
    """`student(terms_grid [G, F], terms_data [N, F], bias) -> (centred [G, F], new_bias)`:
    each shape function minus its mean over the data, the means moved into the bias, so
    that the model's predictions do not change. Against `additive.centred_terms`."""
    from helpers import additive

    rng = np.random.default_rng(0)
    for f in (1, 3):
        coef = rng.normal(size=(3, f))

        def terms_fn(x, coef=coef):  # cubic shape functions with offsets
            x = np.asarray(x)
            return coef[0] + coef[1] * x + coef[2] * x**3

        grid = np.linspace(-2, 2, 9)[:, None].repeat(f, 1)
        data = rng.normal(1.0, 1.0, (50, f))
        bias = float(rng.normal())
        out = _stub_or(student, terms_fn(grid), terms_fn(data), bias, what="your centring")
        centred, new_bias = np.asarray(out[0], float), float(out[1])
        want = additive.centred_terms(terms_fn, grid, data)
        if centred.shape != want.shape or np.abs(centred - want).max() > 1e-6:
            raise CheckFailed(f"with {f} feature(s), your centred shape functions differ from the reference by "
                              f"{np.abs(centred - want).max() if centred.shape == want.shape else 'shape'}: subtract each "
                              "column's mean over the data (not over the grid)")
        before = bias + terms_fn(data).sum(1)
        after = new_bias + (terms_fn(data) - terms_fn(data).mean(0)).sum(1)
        if np.abs(before - after).max() > 1e-6:
            raise CheckFailed(f"with {f} feature(s), centring changed the predictions by {np.abs(before - after).max():.3g}: "
                              "the bias must absorb the sum of the subtracted means")
    return "centred shape functions: both cases pass (means 0 on the data, predictions unchanged)"


def check_table_lookup(student: Callable) -> str:
    """`student(lo [F], step [F], values [F, G], x [B, F]) -> [B, F]`: each feature's term
    by linear interpolation in its table (grid point k at lo + k step), holding the end
    values outside the grid. Against `additive.table_terms`."""
    from helpers import additive

    rng = np.random.default_rng(0)
    lo, step = np.array([-1.0, 0.0, 10.0]), np.array([0.5, 0.25, 2.0])
    values = rng.normal(size=(3, 6)).astype(np.float32)
    tables = additive.Tables(lo, step, values, 0.0)
    on_grid = lo + np.arange(6)[:, None] * step
    cases = [(on_grid, "inputs on the grid points (the table values themselves)"),
             (on_grid[:-1] + step / 2, "inputs halfway between grid points (the mean of the neighbours)"),
             (np.array([lo - 3 * step, lo + 9 * step]), "inputs outside the grid (the end values)"),
             (lo + rng.uniform(-1, 6, (40, 3)) * step, "random inputs")]
    for x, name in cases:
        got = _run(student, lo, step, values, x, what="your table lookup")
        want = additive.table_terms(tables, x)
        if got.shape != want.shape:
            raise CheckFailed(f"one term per input and feature: expected shape {want.shape}, got {got.shape}")
        if np.abs(got - want).max() > 1e-5:
            i = np.unravel_index(np.argmax(np.abs(got - want)), got.shape)
            raise CheckFailed(f"for {name}, input {i[0]} feature {i[1]} (x = {x[i]:.3f}) should give {want[i]:.4f}, "
                              f"yours gives {got[i]:.4f}")
    return f"table lookup: all {len(cases)} cases pass"


# ----------------------------------------------------------------------------- chapter 12


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


# ----------------------------------------------------------------------------- chapter 13


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


# ----------------------------------------------------------------------------- chapter 14


def check_helix_descriptors(student: Callable) -> str:
    """`student(sequence) -> (net_charge, mean_hydropathy, hydrophobic_moment)`: K + R - D - E,
    the mean Kyte-Doolittle value, and |sum_k h_k exp(i k 100 deg)| / n. Against
    `sequences.descriptors` on peptides from both classes of chapter 14."""
    cases = (*PEPTIDES, "EEDDQSPG", "KKKK", "LKLLKKLLKLLKKL")
    for seq in cases:
        out = _stub_or(student, seq, what="your descriptors")
        got = np.asarray([float(v) for v in out])
        want = seqs_lib.descriptors([seq])[0][[1, 3, 4]]
        for j, name in enumerate(("net charge", "mean hydropathy", "hydrophobic moment")):
            if abs(got[j] - want[j]) > 1e-4:
                hint = {0: "count K and R as +1, D and E as -1 (not H)", 1: "average over the residues",
                        2: "the angle of residue k is k x 100 degrees: convert to radians before cos and sin"}[j]
                raise CheckFailed(f"for {seq} the {name} is {want[j]:.4f}, yours is {got[j]:.4f}: {hint}")
    return f"descriptors: all {len(cases)} peptides pass"


def check_class_difference(student: Callable) -> str:
    """`student(sequences, labels) -> [20]`: in percentage points, the pooled amino-acid
    composition of the label-1 peptides minus that of the label-0 ones (every residue
    counts once, so long peptides weigh more), columns in `AMINO_ACIDS` order. Against
    `sequences.pooled_composition`."""
    cases = [(["KK", "KKKK"], [1, 0], "two peptides of lysine only (difference 0)"),
             (["KKKK", "EE"], [1, 0], "lysine against glutamate (+100 for K, -100 for E)"),
             (["K", "LLLLLLLLK", "EE", "EEEEEEED"], [1, 1, 0, 0], "peptides of different lengths (pool the residues, "
              "do not average each peptide's fractions)")]
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list(seqs_lib.AMINO_ACIDS), rng.integers(5, 30))) for _ in range(40)]
    cases.append((seqs, list(rng.integers(0, 2, 40)), "40 random peptides"))
    for sequences, labels, name in cases:
        got = _run(student, sequences, np.asarray(labels), what="your class difference")
        pos = [s for s, y in zip(sequences, labels, strict=True) if y == 1]
        neg = [s for s, y in zip(sequences, labels, strict=True) if y == 0]
        want = 100 * (seqs_lib.pooled_composition(pos) - seqs_lib.pooled_composition(neg))
        if got.shape != (20,):
            raise CheckFailed(f"one value per amino acid, shape (20,) in AMINO_ACIDS order; yours has {got.shape}")
        if np.abs(got - want).max() > 1e-6:
            j = int(np.argmax(np.abs(got - want)))
            raise CheckFailed(f"for {name}, {seqs_lib.AMINO_ACIDS[j]} should be {want[j]:+.2f} percentage points, "
                              f"yours is {got[j]:+.2f}")
    return f"class difference: all {len(cases)} cases pass"
