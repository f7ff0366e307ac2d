"""Exercise checks of chapter 10, counterfactuals: best substitution and edit distance
(convention: `_common`; the student's function runs on every case before any expected value
is computed)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from helpers import sequences as seqs_lib
from helpers.course.checks._common import CheckFailed, _collect, _models, _peptides, _rng


def check_best_substitution(student: Callable, *, seed: int | None = None) -> str:
    """`student(f, sequence) -> (position, amino_acid, logit)`: among the 19 n single
    substitutions of the peptide, the one with the lowest logit; position counts from 1.
    Cases: the linear model and the course CNN against `counterfactual.substitution_scan`
    (off limits while yours runs, with `search` and `flipping_substitutions`)."""
    from helpers import counterfactual

    linear, _, cnn = _models(seed)
    cases = [(model, name, seq) for model, name in ((linear, "the linear model"), (cnn, "the course CNN"))
             for seq in _peptides(seed)]
    outs = _collect(student, [(m, s) for m, _, s in cases], what="your best substitution", raw=True,
                    forbidden=(counterfactual.substitution_scan, counterfactual.search, counterfactual.flipping_substitutions))
    for (model, name, seq), out in zip(cases, outs, strict=True):
        if not (isinstance(out, tuple | list) and len(out) == 3):
            raise CheckFailed(f"return a tuple (position, amino_acid, logit), e.g. (3, 'R', -1.25); got {type(out).__name__}")
        logits = counterfactual.substitution_scan(model, seq).logits.copy()
        logits[np.arange(len(seq)), [seqs_lib.AMINO_ACIDS.index(a) for a in seq]] = np.inf  # not a substitution
        best = float(logits.min())
        pos, aa, logit = int(out[0]), str(out[1]), float(out[2])
        valid = 1 <= pos <= len(seq) and aa in seqs_lib.AMINO_ACIDS and aa != seq[pos - 1]
        theirs = float(logits[pos - 1, seqs_lib.AMINO_ACIDS.index(aa)]) if valid else np.inf
        if not valid or theirs > best + 1e-5 or abs(logit - theirs) > 1e-4:  # ties: any best one will do
            off_by_one = 0 <= pos < len(seq) and aa in seqs_lib.AMINO_ACIDS and logits[pos, seqs_lib.AMINO_ACIDS.index(aa)] <= best + 1e-5
            if off_by_one:
                why = "your substitution is the best one, but positions count from 1"
            elif not valid:
                why = f"{pos}{aa} is not a substitution of {seq} (a position 1 to {len(seq)}, another amino acid)"
            elif theirs > best + 1e-5:
                why = f"a substitution with a logit lower by {theirs - best:.3g} exists; scan all 19 per position"
            else:
                why = f"the logit you report for {seq[pos - 1]}{pos}{aa} is off by {abs(logit - theirs):.3g}"
            raise CheckFailed(f"on {name} and {seq}: {why}")
    return f"best single substitution: all {len(cases)} cases pass"


def check_edit_distance(student: Callable, *, seed: int | None = None) -> str:
    """`student(a, b) -> int`, the Levenshtein distance. Cases by hand and random peptide
    pairs against `counterfactual.edit_distance` (off limits while yours runs)."""
    from helpers import counterfactual

    names = ["from the empty string (insert everything)", "identical peptides", "one substitution",
             "one deletion", "a shift (one deletion and one insertion)"]
    cases = [("", "KLW"), ("KLW", "KLW"), ("KLW", "KAW"), ("KLAW", "KLW"), ("GIGK", "IGKG")]
    rng = _rng(seed)
    if seed is not None:  # the same kinds of edit on other letters
        a = "".join(rng.choice(list(seqs_lib.AMINO_ACIDS), 4))
        cases = [("", a[:3]), (a[:3], a[:3]), (a[:3], a[0] + ("A" if a[1] != "A" else "G") + a[2]),
                 (a[:2] + "Y" + a[2:], a), (a, a[1:] + a[0])]
    for _ in range(5):
        a = "".join(rng.choice(list(seqs_lib.AMINO_ACIDS), rng.integers(3, 12)))
        b = "".join(rng.choice(list(a + "KL"), rng.integers(3, 12)))
        cases.append((a, b))
        names.append(f"random pair {a} / {b}")
    outs = _collect(student, cases, what="your edit distance", raw=True,
                    forbidden=(counterfactual.edit_distance, counterfactual._levenshtein,
                               counterfactual.nearest_edit_distance, counterfactual.edit_script))
    for (a, b), got, name in zip(cases, outs, names, strict=True):
        want = counterfactual.edit_distance(a, b)
        got = int(got)
        if got != want:
            side = "too large" if got > want else "too small"
            raise CheckFailed(f"for {name} ({a!r} -> {b!r}) your distance is {side} by {abs(got - want)}")
    return f"edit distance: all {len(cases)} cases pass"
