"""Exercise checks of chapter 10, counterfactuals: best substitution and edit distance (convention: `_common`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from helpers import sequences as seqs_lib
from helpers.course.checks._common import PEPTIDES, CheckFailed, _models, _run, _stub_or


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
