"""Exercise checks of chapter 14, case study: helix descriptors and class differences (convention: `_common`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from helpers import sequences as seqs_lib
from helpers.course.checks._common import PEPTIDES, CheckFailed, _run, _stub_or


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
