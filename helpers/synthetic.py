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


# ----------------------------------------------------------------------------- trained models

MOTIF_MODEL = "motif_cnn"  # the course CNN trained on the planted-motif task
SHUFFLED_MODEL = "motif_cnn_shuffled"  # the same, trained on permuted labels (a sanity check)
MOTIF_SPLITS = {"train": (3000, 1), "validation": (500, 2), "test": (500, 3)}  # (n, seed), as chapter 6


def motif_splits(sizes: dict[str, tuple[int, int]] = MOTIF_SPLITS) -> dict[str, MotifData]:
    """The planted-motif train, validation and test sets: `{name: planted_motif(n, seed=seed)}`."""
    return {name: planted_motif(n, seed=seed) for name, (n, seed) in sizes.items()}


def shuffled_labels(split: Split, *, seed: int) -> Split:
    """`split` with its labels permuted: the same inputs, no relation left to learn."""
    return split._replace(y=np.random.default_rng(seed).permutation(split.y))


def train_motif_models(*, sizes: dict[str, tuple[int, int]] = MOTIF_SPLITS, epochs: int = 10, shuffled_epochs: int = 120,
                       seed: int = 0, which: tuple[str, ...] = (MOTIF_MODEL, SHUFFLED_MODEL)) -> dict:
    """Trains the course CNN (`helpers.training.train`) on the planted-motif task, and once
    more on permuted training labels (`which` picks the models). The shuffled model is
    trained without weight decay for `shuffled_epochs` and selected by its AUROC on its own
    (shuffled) training labels: the data-randomisation test of Adebayo et al. compares with
    a model that has *memorised* its labels (the default 120 epochs reach a training AUROC
    near 1), since nothing generalises. Returns `{name: (params, info)}`."""
    unknown = set(which) - {MOTIF_MODEL, SHUFFLED_MODEL}
    if unknown or not which:
        raise ValueError(f"which must name some of {MOTIF_MODEL!r}, {SHUFFLED_MODEL!r}; got {which!r}")
    from helpers import metrics, training
    from helpers import model as model_lib

    data = motif_splits(sizes)
    train, val, test = (data[k].split for k in ("train", "validation", "test"))
    out, runs = {}, []
    if MOTIF_MODEL in which:
        run = training.train(train_split=train, val_split=val, epochs=epochs, patience=4, seed=seed, progress=False)
        runs.append((MOTIF_MODEL, run, train))
    if SHUFFLED_MODEL in which:
        shuffled = shuffled_labels(train, seed=seed)
        run_s = training.train(train_split=shuffled, val_split=shuffled, epochs=shuffled_epochs, patience=shuffled_epochs,
                               seed=seed, weight_decay=0.0, progress=False)
        runs.append((SHUFFLED_MODEL, run_s, shuffled))
    for name, r, fit_split in runs:
        f = model_lib.predict_fn(r.params)
        auc = {k: metrics.auroc(s.y, np.asarray(f(s.x))) for k, s in (("fit", fit_split), ("test", test))}
        out[name] = (r.params, {"train_auroc_on_its_labels": auc["fit"], "test_auroc": auc["test"], "best_epoch": r.best_epoch,
                                "epochs": epochs if name == MOTIF_MODEL else shuffled_epochs, "seed": seed,
                                "sizes": {k: list(v) for k, v in sizes.items()}, "train_seconds": round(r.seconds, 1)})
    return out


def main(argv=None) -> None:
    import argparse
    import json
    import sys
    from pathlib import Path

    from helpers import model as model_lib

    p = argparse.ArgumentParser(description="Train the planted-motif CNN and its shuffled-label twin (chapter 13).")
    p.add_argument("--out", type=Path, default=model_lib.pretrained_dir())
    p.add_argument("--small", action="store_true", help="tiny data and 1 epoch: a smoke test")
    p.add_argument("--only", choices=(MOTIF_MODEL, SHUFFLED_MODEL), help="train only this model")
    a = p.parse_args(argv)
    kw = dict(sizes={"train": (256, 1), "validation": (64, 2), "test": (64, 3)}, epochs=1, shuffled_epochs=1) if a.small else {}
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
