"""Peptide sequences <-> one-hot arrays.

Shape glossary (used throughout `helpers`):
  B: batch size.
  L: padded sequence length (`DEFAULT_LENGTH` = 190, the width of the DBAASP files).
  A: channels = 21 (index 0 is padding, 1..20 the amino acids in `AMINO_ACIDS` order).

A one-hot array is float32 `[L, A]`: a residue sets its amino-acid channel, a padding
position sets channel 0. The all-zero array is *not* a sequence (no channel set); the model
maps it to a logit of exactly 0, which later chapters use as a baseline.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

ALPHABET = "-ARNDCQEGHILKMFPSTWYV"
"""Index 0 is padding, 1..20 the amino acids (the order of the DBAASP files)."""
AMINO_ACIDS = ALPHABET[1:]
PAD_INDEX = 0
NUM_CHANNELS = len(ALPHABET)  # A = 21
DEFAULT_LENGTH = 190  # L

_INDEX = {aa: i for i, aa in enumerate(ALPHABET) if i > 0}
_CODES = np.zeros(256, np.int32)  # byte -> channel, for sequences already validated
_CODES[[ord(a) for a in AMINO_ACIDS]] = np.arange(1, len(ALPHABET))

KYTE_DOOLITTLE = {
    "A": 1.8, "R": -4.5, "N": -3.5, "D": -3.5, "C": 2.5, "Q": -3.5, "E": -3.5, "G": -0.4,
    "H": -3.2, "I": 4.5, "L": 3.8, "K": -3.9, "M": 1.9, "F": 2.8, "P": -1.6, "S": -0.8,
    "T": -0.7, "W": -0.9, "Y": -1.3, "V": 4.2,
}
"""Kyte-Doolittle hydropathy of each amino acid (J. Mol. Biol. 157:105, 1982)."""


def _clean(seq: object, *, length: int, where: str = "") -> str:
    """Validates one sequence and returns it upper-cased, stripped of outer whitespace."""
    if not isinstance(seq, str):
        raise ValueError(
            f"{where}expected a peptide as a string of one-letter amino-acid codes, "
            f"got {type(seq).__name__}: {seq!r}"
        )
    # Before any case-folding: "ß".upper() is "SS", a ligature "ﬁ" becomes "FI", a dotless
    # "ı" becomes "I"; such text (from copy-paste) is refused, never silently rewritten.
    if not seq.isascii():
        pos, ch = next((p, c) for p, c in enumerate(seq, start=1) if not c.isascii())
        raise ValueError(
            f"{where}non-ASCII character {ch!r} (U+{ord(ch):04X}) at position {pos} of the "
            f"input {seq!r}: use the 20 standard one-letter codes {AMINO_ACIDS}"
        )
    s = seq.strip().upper()
    if not s:
        raise ValueError(f"{where}empty sequence: a peptide needs at least one residue")
    for pos, ch in enumerate(s, start=1):
        if ch not in _INDEX:
            raise ValueError(
                f"{where}invalid residue {ch!r} at position {pos} of {s!r}: use the 20 "
                f"standard one-letter codes {AMINO_ACIDS} (no gaps, no X/B/Z/U/O)"
            )
    if len(s) > length:
        raise ValueError(
            f"{where}sequence of length {len(s)} is longer than the limit L = {length}: "
            f"shorten it or pass a larger `length=`"
        )
    return s


def _check_length(length: int) -> None:
    if not isinstance(length, (int, np.integer)) or isinstance(length, bool) or length < 1:
        raise ValueError(f"length must be a positive integer, got {length!r}")


def _as_list(seqs, where: str) -> list:
    """A list of sequences from `seqs`; a single string is refused (never read as a list of
    one-letter peptides)."""
    if isinstance(seqs, (str, bytes)):
        raise ValueError(f"{where} takes a list of sequences, got a single string: wrap it in a list "
                         f"(or use encode() for one peptide)")
    try:
        return list(seqs)
    except TypeError:
        raise ValueError(f"{where} takes a list of sequences, got {type(seqs).__name__}") from None


def _max_length(seqs: list) -> int:
    """The longest stripped sequence (for sizing), after each item is checked to be a str."""
    for i, s in enumerate(seqs):
        _clean(s, length=len(s) if isinstance(s, str) and len(s) else 1, where=f"sequence #{i}: ")
    return max(len(s.strip()) for s in seqs)


def to_indices(seq: str, *, length: int = DEFAULT_LENGTH) -> np.ndarray:
    """Integer codes `[L]` (int32, 0 = padding), the format of the DBAASP files."""
    _check_length(length)
    s = _clean(seq, length=length)
    out = np.zeros(length, dtype=np.int32)
    out[: len(s)] = [_INDEX[ch] for ch in s]
    return out


def encode(seq: str, *, length: int = DEFAULT_LENGTH) -> np.ndarray:
    """One peptide -> one-hot float32 `[L, A]` with channel 0 set on padding positions.

    Upper or lower case is accepted and surrounding whitespace is stripped. Raises
    `ValueError` for a non-string, an empty sequence, an invalid residue (named, with its
    1-based position) or a sequence longer than `length`.
    """
    return np.eye(NUM_CHANNELS, dtype=np.float32)[to_indices(seq, length=length)]


def encode_batch(seqs: Iterable[str], *, length: int = DEFAULT_LENGTH) -> np.ndarray:
    """Many peptides -> `[B, L, A]`. Errors name the offending item's index."""
    if isinstance(seqs, (str, bytes)):
        raise ValueError("encode_batch takes a list of sequences; use encode() for one string")
    _check_length(length)
    cleaned = [_clean(seq, length=length, where=f"sequence #{i}: ") for i, seq in enumerate(seqs)]
    return _one_hot(cleaned, length)


def _one_hot(cleaned: Sequence[str], length: int) -> np.ndarray:
    """`[B, L, A]` of sequences that `_clean` has already validated (no checks here)."""
    idx = np.zeros((len(cleaned), length), dtype=np.int32)
    for i, s in enumerate(cleaned):
        idx[i, : len(s)] = _CODES[np.frombuffer(s.encode(), np.uint8)]
    return np.eye(NUM_CHANNELS, dtype=np.float32)[idx]


def _check_one_hot(x: np.ndarray, *, batched: bool) -> np.ndarray:
    x = np.asarray(x)
    want = 3 if batched else 2
    if x.ndim != want or x.shape[-1] != NUM_CHANNELS or x.shape[-2] == 0:
        shape = "[B, L, 21]" if batched else "[L, 21]"
        raise ValueError(f"expected a one-hot array of shape {shape} (L >= 1), got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise ValueError(f"expected a numeric one-hot array, got dtype {x.dtype}")
    if np.isnan(x).any():
        raise ValueError("array contains NaN: not a one-hot encoding")
    is01 = np.all((x == 0) | (x == 1), axis=-1)
    one = x.sum(axis=-1) == 1
    bad = ~(is01 & one)
    if bad.any():
        pos = np.argwhere(bad)[0]
        where = f"item {pos[0]}, position {pos[1] + 1}" if batched else f"position {pos[0] + 1}"
        raise ValueError(
            f"not a one-hot encoding at {where}: each row must hold exactly one 1 and "
            f"zeros elsewhere (got {x[tuple(pos)]!r}); attributions and interpolated inputs "
            f"are not sequences"
        )
    idx = x.argmax(axis=-1)
    # Padding must be trailing: a residue after a padding position is not a peptide.
    residue = idx > 0
    trailing_ok = np.all(residue[..., :-1] | ~residue[..., 1:], axis=-1)
    if not np.all(trailing_ok):
        raise ValueError("padding must come after the residues: found a residue after padding")
    if not residue[..., 0].all():
        raise ValueError("empty sequence: the array holds padding only")
    return idx


def decode(x: np.ndarray) -> str:
    """One-hot `[L, A]` -> sequence string (padding dropped). Rejects non-one-hot arrays."""
    idx = _check_one_hot(x, batched=False)
    return "".join(ALPHABET[i] for i in idx if i > 0)


def decode_batch(x: np.ndarray) -> list[str]:
    """One-hot `[B, L, A]` -> list of sequence strings."""
    idx = _check_one_hot(x, batched=True)
    return ["".join(ALPHABET[i] for i in row if i > 0) for row in idx]


def indices_to_strings(idx: np.ndarray) -> list[str]:
    """Integer codes `[N, L]` (0 = padding, trailing) -> sequence strings."""
    idx = np.asarray(idx)
    if idx.ndim != 2 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"idx: expected integer codes in 0..20 of shape [N, L], got {idx.dtype} {idx.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= NUM_CHANNELS):
        raise ValueError(f"idx: codes must lie in 0..20, got {idx.min()}..{idx.max()}")
    residue = idx > 0
    gap = ~residue[:, :-1] & residue[:, 1:]  # padding followed by a residue
    if gap.any():
        row, col = np.argwhere(gap)[0]
        raise ValueError(f"idx: row {row} has padding at position {col + 1} before a residue: padding must be "
                         f"trailing (dropping it would silently join the residues around the gap)")
    letters = np.array(list(ALPHABET))
    return ["".join(letters[row[row > 0]]) for row in idx]


def lengths(x: np.ndarray) -> np.ndarray:
    """Number of residues per sequence from one-hot `[..., L, A]` -> `[...]` int."""
    if np.ndim(x) < 2 or np.shape(x)[-1] != NUM_CHANNELS:
        raise ValueError(f"x: expected one-hot peptides [..., L, 21], got shape {np.shape(x)}")
    return (np.asarray(x)[..., 1:].sum(axis=-1) > 0).sum(axis=-1)


def composition(seqs: Sequence[str]) -> np.ndarray:
    """Amino-acid fractions `[B, 20]` (columns in `AMINO_ACIDS` order)."""
    seqs = _as_list(seqs, "composition")
    if not seqs:
        return np.zeros((0, len(AMINO_ACIDS)))
    x = encode_batch(seqs, length=_max_length(seqs))
    counts = x[..., 1:].sum(axis=1)
    return counts / counts.sum(axis=1, keepdims=True)


def pooled_composition(seqs: Sequence[str]) -> np.ndarray:
    """`[20]`: the fraction of all residues of `seqs` that are each amino acid (long peptides
    weigh more, unlike the mean of `composition`)."""
    seqs = _as_list(seqs, "pooled_composition")
    if not seqs:
        raise ValueError("no sequences: pass at least one")
    idx = _check_one_hot(encode_batch(seqs, length=_max_length(seqs)), batched=True)
    return np.bincount(idx[idx > 0] - 1, minlength=len(AMINO_ACIDS)) / np.count_nonzero(idx)


def composition_features(x: np.ndarray) -> np.ndarray:
    """`[N, 21]` from one-hot peptides `x [N, L, 21]`: the 20 amino-acid fractions and the
    length / 100 (the features of a composition-only baseline)."""
    x = np.asarray(x)
    _check_one_hot(x, batched=True)  # also rejects empty peptides
    counts = x[..., 1:].sum(axis=1)
    n = counts.sum(axis=1, keepdims=True)
    return np.concatenate([counts / n, n / 100], axis=1)


DESCRIPTORS = (
    ("length", "residues"),
    ("net charge", "e, K + R - D - E"),
    ("cationic fraction", "(K + R) / n"),
    ("mean hydropathy", "Kyte-Doolittle"),
    ("hydrophobic moment", "Kyte-Doolittle, 100° helix"),
    ("aromatic fraction", "(F + W + Y) / n"),
    ("helix-breaker fraction", "(P + G) / n"),
    ("cysteine fraction", "C / n"),
)
"""Names and units of the columns of `descriptors`."""
HELIX_ANGLE = 100.0  # degrees of rotation per residue in an alpha helix


def descriptors(seqs: Sequence[str]) -> np.ndarray:
    """Interpretable physico-chemical descriptors `[B, 8]`, columns as in `DESCRIPTORS`.

    Net charge counts K and R as +1, D and E as -1 (histidine is mostly neutral at pH 7.4;
    termini and modifications are not in the data). The hydrophobic moment is Eisenberg's
    `|sum_k h_k exp(i k 100°)| / n` with Kyte-Doolittle `h`: how one-sided the hydropathy is
    if the peptide folds into an alpha helix (amphipathic helices are the classic membrane
    disrupters). Validates like `encode_batch`.
    """
    seqs = _as_list(seqs, "descriptors")
    x = encode_batch(seqs, length=_max_length(seqs) if seqs else 1)
    counts = x[..., 1:].sum(axis=1)  # [B, 20]
    n = counts.sum(axis=1)
    col = {aa: counts[:, i] for i, aa in enumerate(AMINO_ACIDS)}
    h = x[..., 1:] @ np.array([KYTE_DOOLITTLE[a] for a in AMINO_ACIDS], np.float32)  # [B, L]
    angle = np.deg2rad(HELIX_ANGLE) * np.arange(x.shape[1])
    moment = np.hypot(h @ np.cos(angle), h @ np.sin(angle)) / n
    cationic = col["K"] + col["R"]
    return np.stack(
        [
            n,
            cationic - col["D"] - col["E"],
            cationic / n,
            h.sum(axis=1) / n,
            moment,
            (col["F"] + col["W"] + col["Y"]) / n,
            (col["P"] + col["G"]) / n,
            col["C"] / n,
        ],
        axis=1,
    ).astype(np.float64)
