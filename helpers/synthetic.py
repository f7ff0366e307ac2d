"""Synthetic peptides with a planted motif: a task where the right explanation is known.

Shape glossary: N peptides, L padded length, A = 21 channels.

Every peptide is random residues (uniform over the 20 amino acids) with one planted 4-mer:
the *motif* if the peptide is positive, a *decoy* (the same residues in another order) if it
is negative; half of all peptides also carry a second decoy. Both classes therefore have the
same composition in expectation, and only the order of the planted residues separates them:
whether the motif is present, but also how many decoys there are (1.5 per negative, 0.5
per positive in expectation; chapter 4 measures it). An explanation of a positive peptide
should point at the motif's residues, though a model may also use the decoys' absence.
Labels are recomputed from the sequences (motif present or not), so an accidental motif in
the random residues cannot give a wrong label.
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


# ----------------------------------------------------------------------------- an interaction (AND)

HALF_A, HALF_B = "KWL", "RDF"  # the two half-motifs of the AND task
DECOY_A, DECOY_B = "LWK", "DRF"  # their reorderings


class PairData(NamedTuple):
    split: Split  # x [N, L, A], y [N] (1 iff both halves are present), sequences
    starts: np.ndarray  # [N, 2] starts of the two planted slots (half or its decoy)
    planted: np.ndarray  # [N, 2] bool: True where the slot holds the half, False the decoy


def planted_pair(n: int, *, seed: int, min_gap: int = 4, min_length: int = 18, max_length: int = 30,
                 length: int = DEFAULT_LENGTH) -> PairData:
    """`n` random peptides with two planted slots at least `min_gap` residues apart: slot A
    holds `HALF_A` or its decoy, slot B `HALF_B` or its decoy, the four combinations equally
    likely (in either order along the peptide). The label is 1 iff both halves are present
    (recomputed from the sequence): an AND, where neither half alone says anything more
    than the other, and a model must combine the two to be right."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    k = len(HALF_A)
    if min_gap < 1 or min_length < 2 * k + min_gap or max_length < min_length:
        raise ValueError(f"lengths must satisfy 2 x {k} + min_gap <= min_length <= max_length and min_gap >= 1")
    rng = np.random.default_rng(seed)
    sequences, starts, planted = [], [], []
    for _ in range(n):
        size = int(rng.integers(min_length, max_length + 1))
        residues = list(rng.choice(list(AMINO_ACIDS), size))
        first = int(rng.integers(0, size - 2 * k - min_gap + 1))
        second = int(rng.integers(first + k + min_gap, size - k + 1))
        slot_a, slot_b = (first, second) if rng.random() < 0.5 else (second, first)
        has = rng.random(2) < 0.5
        residues[slot_a : slot_a + k] = list(HALF_A if has[0] else DECOY_A)
        residues[slot_b : slot_b + k] = list(HALF_B if has[1] else DECOY_B)
        sequences.append("".join(residues))
        starts.append((slot_a, slot_b))
        planted.append(tuple(bool(h) for h in has))
    y = np.array([HALF_A in s and HALF_B in s for s in sequences], dtype=np.int32)
    split = Split(encode_batch(sequences, length=length), y, sequences)
    return PairData(split, np.array(starts), np.array(planted))


def pair_masks(data: PairData, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Two `[n]` bool masks over the residues of peptide i: its planted slot A and slot B."""
    n = len(data.split.sequences[i])
    masks = np.zeros((2, n), dtype=bool)
    for h, start in enumerate(data.starts[i]):
        masks[h, start : start + len(HALF_A)] = True
    return masks[0], masks[1]


def and_game_values(masks) -> np.ndarray:
    """The label as a game of the two halves: `masks [C, 2]` (half present) -> `[C]`, 1 iff
    both are present. Its Shapley values are (1/2, 1/2): the symmetric ground truth."""
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 2 or masks.shape[1] != 2:
        raise ValueError(f"masks must be [C, 2], got shape {masks.shape}")
    return masks.all(axis=1).astype(float)


# ----------------------------------------------------------------------------- trained models

MOTIF_MODEL = "motif_cnn"  # the course CNN trained on the planted-motif task
SHUFFLED_MODEL = "motif_cnn_shuffled"  # the same, trained on permuted labels (a sanity check)
REFERENCE_MODEL = "motif_cnn_reference"  # the shuffled model's recipe on the true labels (its reference)
AND_MODEL = "motif_cnn_and"  # the course CNN trained on the AND task (`planted_pair`)
MODELS = (MOTIF_MODEL, SHUFFLED_MODEL, REFERENCE_MODEL, AND_MODEL)
MOTIF_SPLITS = {"train": (3000, 1), "validation": (500, 2), "test": (500, 3)}  # (n, seed), as chapter 6
PAIR_SPLITS = {"train": (4000, 11), "validation": (500, 12), "test": (500, 13)}  # (n, seed) of the AND task


def motif_splits(sizes: dict[str, tuple[int, int]] = MOTIF_SPLITS) -> dict[str, MotifData]:
    """The planted-motif train, validation and test sets: `{name: planted_motif(n, seed=seed)}`."""
    return {name: planted_motif(n, seed=seed) for name, (n, seed) in sizes.items()}


def pair_splits(sizes: dict[str, tuple[int, int]] = PAIR_SPLITS) -> dict[str, PairData]:
    """The AND task's train, validation and test sets: `{name: planted_pair(n, seed=seed)}`."""
    return {name: planted_pair(n, seed=seed) for name, (n, seed) in sizes.items()}


def shuffled_labels(split: Split, *, seed: int) -> Split:
    """`split` with its labels permuted: the same inputs, no relation left to learn."""
    return split._replace(y=np.random.default_rng(seed).permutation(split.y))


def train_motif_models(*, sizes: dict[str, tuple[int, int]] = MOTIF_SPLITS, epochs: int = 10, shuffled_epochs: int = 120,
                       seed: int = 0, which: tuple[str, ...] = MODELS,
                       pair_sizes: dict[str, tuple[int, int]] = PAIR_SPLITS, pair_epochs: int = 20) -> dict:
    """Trains the course CNN (`helpers.training.train`) on the planted-motif task, once more
    on permuted training labels, once more on the true labels with the permuted run's recipe,
    and on the AND task (`which` picks the models). The shuffled model is trained without
    weight decay for `shuffled_epochs` and selected by its AUROC on its own (shuffled)
    training labels: the data-randomisation test of Adebayo et al. compares with a model
    that has *memorised* its labels (the default 120 epochs reach a training AUROC near 1),
    since nothing generalises. The reference model (`REFERENCE_MODEL`) follows exactly that
    recipe on the true labels, so that the two differ only in the labels. The AND model is
    trained like the motif model, on `pair_splits(pair_sizes)`, for `pair_epochs`.
    Returns `{name: (params, info)}`."""
    unknown = set(which) - set(MODELS)
    if unknown or not which:
        raise ValueError(f"which must name some of {MODELS!r}; got {which!r}")
    from helpers import metrics, training
    from helpers import model as model_lib

    data = motif_splits(sizes)
    train, val, test = (data[k].split for k in ("train", "validation", "test"))
    out, runs = {}, []
    if MOTIF_MODEL in which:
        run = training.train(train_split=train, val_split=val, epochs=epochs, patience=4, seed=seed, progress=False)
        runs.append((MOTIF_MODEL, run, train, test, epochs, None))
    for name, labels in ((SHUFFLED_MODEL, shuffled_labels(train, seed=seed)), (REFERENCE_MODEL, train)):
        if name in which:
            run_s = training.train(train_split=labels, val_split=labels, epochs=shuffled_epochs, patience=shuffled_epochs,
                                   seed=seed, weight_decay=0.0, progress=False)
            runs.append((name, run_s, labels, test, shuffled_epochs, 0.0))
    if AND_MODEL in which:
        pair = pair_splits(pair_sizes)
        p_train, p_val, p_test = (pair[k].split for k in ("train", "validation", "test"))
        run_p = training.train(train_split=p_train, val_split=p_val, epochs=pair_epochs, patience=4, seed=seed, progress=False)
        runs.append((AND_MODEL, run_p, p_train, p_test, pair_epochs, None))
    for name, r, fit_split, test_split, n_epochs, wd in runs:
        f = model_lib.predict_fn(r.params)
        auc = {k: metrics.auroc(s.y, np.asarray(f(s.x))) for k, s in (("fit", fit_split), ("test", test_split))}
        info = {"train_auroc_on_its_labels": auc["fit"], "test_auroc": auc["test"], "best_epoch": r.best_epoch,
                "epochs": n_epochs, "seed": seed, "train_seconds": round(r.seconds, 1),
                "sizes": {k: list(v) for k, v in (pair_sizes if name == AND_MODEL else sizes).items()}}
        if wd is not None:
            info["weight_decay"] = wd
        out[name] = (r.params, info)
    return out


def main(argv=None) -> None:
    import argparse
    import json
    import sys
    from pathlib import Path

    from helpers import model as model_lib

    p = argparse.ArgumentParser(description="Train the planted-motif CNNs of chapter 13 (motif, shuffled, reference, AND).")
    p.add_argument("--out", type=Path, default=model_lib.pretrained_dir())
    p.add_argument("--small", action="store_true", help="tiny data and 1 epoch: a smoke test")
    p.add_argument("--only", choices=MODELS, help="train only this model")
    a = p.parse_args(argv)
    tiny = {"train": (256, 1), "validation": (64, 2), "test": (64, 3)}
    kw = dict(sizes=tiny, epochs=1, shuffled_epochs=1, pair_sizes=tiny, pair_epochs=1) if a.small else {}
    if a.only:
        kw["which"] = (a.only,)
    a.out.mkdir(parents=True, exist_ok=True)
    for name, (params, info) in train_motif_models(**kw).items():
        model_lib.save_params(a.out / f"{name}.npz", params)
        info["command"] = "python -m helpers.synthetic " + " ".join(argv if argv is not None else sys.argv[1:])
        (a.out / f"{name}.json").write_text(json.dumps(info, indent=1) + "\n")
        print(name, json.dumps(info))


if __name__ == "__main__":
    main()
