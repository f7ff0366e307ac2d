"""Exercise checks of chapter 14, case study: helix descriptors and class differences
(convention: `_common`; the student's function runs on every case before any expected value
is computed)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from helpers import sequences as seqs_lib
from helpers.course.checks._common import CheckFailed, _collect, _peptides, _rng


def check_helix_descriptors(student: Callable, *, seed: int | None = None) -> str:
    """`student(sequence) -> (net_charge, mean_hydropathy, hydrophobic_moment)`: K + R - D - E,
    the mean Kyte-Doolittle value, and |sum_k h_k exp(i k 100 deg)| / n. Against
    `sequences.descriptors` (off limits while yours runs) on peptides from both classes."""
    cases = (*_peptides(seed), "EEDDQSPG", "KKKK", "LKLLKKLLKLLKKL")
    outs = _collect(student, [(s,) for s in cases], what="your descriptors", raw=True,
                    forbidden=(seqs_lib.descriptors,))
    for seq, out in zip(cases, outs, strict=True):
        got = np.asarray([float(v) for v in out])
        want = seqs_lib.descriptors([seq])[0][[1, 3, 4]]
        for j, name in enumerate(("net charge", "mean hydropathy", "hydrophobic moment")):
            if abs(got[j] - want[j]) > 1e-4:
                hint = {0: "count K and R as +1, D and E as -1 (not H)", 1: "average over the residues",
                        2: "the angle of residue k is k x 100 degrees: convert to radians before cos and sin"}[j]
                raise CheckFailed(f"for {seq} your {name} is off by {abs(got[j] - want[j]):.4g}: {hint}")
    return f"descriptors: all {len(cases)} peptides pass"


def check_class_difference(student: Callable, *, seed: int | None = None) -> str:
    """`student(sequences, labels) -> [20]`: in percentage points, the pooled amino-acid
    composition of the label-1 peptides minus that of the label-0 ones (every residue
    counts once, so long peptides weigh more), columns in `AMINO_ACIDS` order. Against
    `sequences.pooled_composition` (off limits while yours runs, with `composition`)."""
    names = ["two peptides of lysine only (difference 0)", "lysine against glutamate",
             "peptides of different lengths (pool the residues, do not average each peptide's fractions)"]
    cases = [(["KK", "KKKK"], [1, 0]), (["KKKK", "EE"], [1, 0]), (["K", "LLLLLLLLK", "EE", "EEEEEEED"], [1, 1, 0, 0])]
    rng = _rng(seed)
    seqs = ["".join(rng.choice(list(seqs_lib.AMINO_ACIDS), rng.integers(5, 30))) for _ in range(40)]
    cases.append((seqs, list(rng.integers(0, 2, 40))))
    names.append("40 random peptides")
    outs = _collect(student, [(s, np.asarray(y)) for s, y in cases], what="your class difference",
                    forbidden=(seqs_lib.pooled_composition, seqs_lib.composition))
    for (sequences, labels), got, name in zip(cases, outs, names, strict=True):
        pos = [s for s, y in zip(sequences, labels, strict=True) if y == 1]
        neg = [s for s, y in zip(sequences, labels, strict=True) if y == 0]
        want = 100 * (seqs_lib.pooled_composition(pos) - seqs_lib.pooled_composition(neg))
        if got.shape != (20,):
            raise CheckFailed(f"one value per amino acid, shape (20,) in AMINO_ACIDS order; yours has {got.shape}")
        if np.abs(got - want).max() > 1e-4:  # percentage points: float32 (jnp) answers land within ~1e-5
            j = int(np.argmax(np.abs(got - want)))
            raise CheckFailed(f"for {name}, your value for {seqs_lib.AMINO_ACIDS[j]} is off by {abs(got[j] - want[j]):.3g} "
                              "percentage points")
    return f"class difference: all {len(cases)} cases pass"
