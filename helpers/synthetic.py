"""Synthetic peptides with a planted motif: a task where the right explanation is known.

Shape glossary: N peptides, L padded length, A = 21 channels.

Every peptide is random residues (uniform over the 20 amino acids) with one planted 4-mer:
the *motif* if the peptide is positive, a *decoy* (the same residues in another order) if it
is negative; half of all peptides also carry a second decoy. Both classes therefore have the
same composition in expectation, and only the motif's order separates them: a model that
solves the task must look at the motif, and an explanation of a positive peptide should
point at the motif's residues. Labels are recomputed from the sequences (motif present or
not), so an accidental motif in the random residues cannot give a wrong label.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from helpers.data import Split
from helpers.sequences import AMINO_ACIDS, DEFAULT_LENGTH, encode_batch

MOTIF = "KWLK"
DECOY = "WKKL"


class MotifData(NamedTuple):
    split: Split  # x [N, L, A], y [N], sequences
    motif_start: np.ndarray  # [N] start of the planted motif, -1 in negatives
    decoy_starts: tuple[tuple[int, ...], ...]  # the planted decoys' starts, per peptide


def planted_motif(
    n: int,
    *,
    seed: int,
    motif: str = MOTIF,
    decoy: str = DECOY,
    min_length: int = 12,
    max_length: int = 30,
    length: int = DEFAULT_LENGTH,
) -> MotifData:
    """`n` random peptides of `min_length .. max_length` residues, half with `motif`."""
    if len(motif) != len(decoy) or sorted(motif) != sorted(decoy) or motif == decoy:
        raise ValueError(f"the decoy {decoy!r} must be a reordering of the motif {motif!r}")
    if min_length < 2 * len(motif) or max_length < min_length:
        raise ValueError(f"lengths must satisfy 2 x {len(motif)} <= min_length <= max_length")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    rng = np.random.default_rng(seed)
    k = len(motif)
    sequences, starts, decoys = [], [], []
    for _ in range(n):
        size = int(rng.integers(min_length, max_length + 1))
        residues = list(rng.choice(list(AMINO_ACIDS), size))
        positive = bool(rng.random() < 0.5)
        first = int(rng.integers(0, size - k + 1))
        free = [s for s in range(size - k + 1) if abs(s - first) >= k]  # no overlap with it
        slots = [first, int(rng.choice(free))]
        planted = [motif if positive else decoy]
        if rng.random() < 0.5:
            planted.append(decoy)
        slots = slots[: len(planted)]
        for start, word in zip(slots, planted, strict=True):
            residues[start : start + k] = list(word)
        seq = "".join(residues)
        sequences.append(seq)
        starts.append(int(slots[0]) if positive else -1)
        decoys.append(tuple(int(s) for s, w in zip(slots, planted, strict=True) if w == decoy))
    y = np.array([motif in s for s in sequences], dtype=np.int32)
    split = Split(encode_batch(sequences, length=length), y, sequences)
    return MotifData(split, np.array(starts), tuple(decoys))


def motif_mask(data: MotifData, i: int, motif: str = MOTIF) -> np.ndarray:
    """`[n]` bool over the residues of peptide i: True on every occurrence of the motif."""
    seq = data.split.sequences[i]
    mask = np.zeros(len(seq), dtype=bool)
    start = seq.find(motif)
    while start >= 0:
        mask[start : start + len(motif)] = True
        start = seq.find(motif, start + 1)
    return mask
