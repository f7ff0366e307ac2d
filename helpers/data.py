"""Hemolysis data: verified downloads, cleaning, a TFDS builder (no TensorFlow), splits.

The builder `HemolyticPeptides` (TFDS name `hemolytic_peptides`) is written as
array_record and read with `as_data_source`, which needs `array_record` but not TensorFlow.

Configs:
  dbaasp (default): Ansari & White (2023) DBAASP hemolysis files; identical sequences
    merged, sequences carrying both labels dropped.
  dmol: the 634 peptides of the dmol-book XAI chapter (Barrett & White 2021), labels as
    stored in that file (see data/README.md for why they are suspect).

Splits: train / validation / test, 80/10/10, stratified by label, drawn from a fixed seed
over *distinct* sequences, so no sequence appears in two splits.

Shapes: `load_split` returns x `[N, L, A]` float32 one-hot, y `[N]` int32 (1 = hemolytic).
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core.utils import tqdm_utils as tfds_tqdm

from helpers import sequences as seqs_lib
from helpers import validation

SPLITS = ("train", "validation", "test")
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
SPLIT_SEED = 20230417  # fixed: the splits are part of the data set's definition
LABEL_NAMES = ("non-hemolytic", "hemolytic")

DATA_FILES = {
    "hemo-positive.npz": (
        "https://github.com/ur-whitelab/peptide-dashboard/raw/master/ml/data/hemo-positive.npz",
        "96cb24d5a7617f7e211cd48d2b0b424a46affa95716b96058058902068068d27",
    ),
    "hemo-negative.npz": (
        "https://github.com/ur-whitelab/peptide-dashboard/raw/master/ml/data/hemo-negative.npz",
        "f83aad41f160deb6401bc0801bddc931488da6e1785749e6f72de6d0f154a37f",
    ),
    "dmol-hemolytic.npz": (
        "https://github.com/whitead/dmol-book/raw/main/data/hemolytic.npz",
        "a8faa589934588527a0bfd3c2215791998aca0dc230e98f2696bbb5c2d3386e6",
    ),
    # Not data: the book's math renderer, served with the book (see _ext/book_html.py).
    "mathjax-3.2.2.tgz": (
        "https://registry.npmjs.org/mathjax/-/mathjax-3.2.2.tgz",
        "1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09",
    ),
}

# Measured on the raw DBAASP files (asserted by tests and by the builder at build time).
DBAASP_COUNTS = {
    "rows": 9316,
    "rows_positive": 1826,
    "rows_negative": 7490,
    "distinct": 6076,
    "conflicting": 465,
    "kept": 5611,
}


class DataError(RuntimeError):
    """A data file could not be obtained or failed verification."""


# ----------------------------------------------------------------------------- files


def data_root() -> Path:
    """Where downloads and the prepared TFDS data live.

    `$IDL_JAX_DATA_DIR` if set; else the repository's git-ignored `data/` folder when
    `helpers` runs from a checkout (an editable install); else `~/.cache/idl-jax`
    (for example in Colab, where `helpers` is pip-installed).
    """
    env = os.environ.get("IDL_JAX_DATA_DIR")
    if env:
        return Path(env).expanduser()
    repo = Path(__file__).resolve().parent.parent
    if (repo / "_config.yml").exists() and (repo / "data").is_dir():
        return repo / "data"
    return Path.home() / ".cache" / "idl-jax"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _manual_hint(name: str, url: str, target: Path) -> str:
    return (
        f"To provide it by hand, download {url} and save it as {target} "
        f"(or point $IDL_JAX_DATA_DIR at a folder whose downloads/ holds it)."
    )


def fetch(name: str, *, cache_dir: Path | None = None) -> Path:
    """Returns the local path of data file `name`, downloading and verifying it if needed.

    The file is checked against its sha256 every time (a few hundred kB). Raises
    `DataError` naming the file, its URL, the expected and actual sha256 and where to put
    the file by hand, if the download fails or the content does not match.
    """
    if name not in DATA_FILES:
        raise ValueError(f"unknown data file {name!r}; known: {sorted(DATA_FILES)}")
    url, expected = DATA_FILES[name]
    cache_dir = Path(cache_dir) if cache_dir is not None else data_root() / "downloads"
    target = cache_dir / name
    if target.exists():
        actual = sha256_of(target)
        if actual != expected:
            raise DataError(
                f"corrupted download: {target} (from {url}) has sha256 {actual}, expected "
                f"{expected}. Delete the file to download it again. "
                + _manual_hint(name, url, target)
            )
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=cache_dir, prefix=f".{name}.")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        try:
            with urllib.request.urlopen(url, timeout=60) as resp, open(tmp, "wb") as out:
                shutil.copyfileobj(resp, out)
        except (urllib.error.URLError, OSError) as err:
            raise DataError(
                f"could not download {name} from {url}: {err}. " + _manual_hint(name, url, target)
            ) from err
        actual = sha256_of(tmp)
        if actual != expected:
            raise DataError(
                f"corrupted download: {name} from {url} has sha256 {actual}, expected "
                f"{expected}. " + _manual_hint(name, url, target)
            )
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


# ----------------------------------------------------------------------------- cleaning


class Cleaned(NamedTuple):
    sequences: list[str]  # distinct, sorted
    labels: np.ndarray  # [N] int32, 1 = hemolytic
    n_rows: np.ndarray  # [N] int32: raw rows merged into each sequence
    counts: dict  # rows, distinct, conflicting, kept, ...


def clean_dbaasp(positive: np.ndarray, negative: np.ndarray) -> Cleaned:
    """Merges identical sequences and drops those that occur with both labels.

    `positive`, `negative`: integer-coded `[N, L]` arrays (0 = padding). The result is
    sorted by sequence, so it does not depend on row order.
    """
    pos = seqs_lib.indices_to_strings(positive)
    neg = seqs_lib.indices_to_strings(negative)
    rows: dict[str, list[int]] = {}
    for label, group in ((1, pos), (0, neg)):
        for s in group:
            rows.setdefault(s, []).append(label)
    conflicting = sorted(s for s, ls in rows.items() if len(set(ls)) > 1)
    kept = sorted(s for s, ls in rows.items() if len(set(ls)) == 1)
    labels = np.array([rows[s][0] for s in kept], dtype=np.int32)
    n_rows = np.array([len(rows[s]) for s in kept], dtype=np.int32)
    counts = {
        "rows": len(pos) + len(neg),
        "rows_positive": len(pos),
        "rows_negative": len(neg),
        "distinct": len(rows),
        "conflicting": len(conflicting),
        "kept": len(kept),
        "kept_positive": int(labels.sum()),
    }
    return Cleaned(kept, labels, n_rows, counts)


def assign_splits(
    sequences: list[str],
    labels: np.ndarray,
    *,
    seed: int = SPLIT_SEED,
    fractions: tuple[float, float, float] = SPLIT_FRACTIONS,
) -> np.ndarray:
    """Stratified train/validation/test assignment `[N]` of split names.

    Rows with the same sequence always land in the same split (they are grouped first), so
    no sequence appears in two splits. Deterministic for a given seed and input order.
    """
    sequences = validation.check_peptides(sequences)
    labels = np.asarray(labels)
    if len(sequences) != len(labels):
        raise ValueError(f"{len(sequences)} sequences but {len(labels)} labels")
    if labels.size and not np.isin(labels, (0, 1)).all():
        raise ValueError(f"labels must be 0 or 1, got values {np.unique(labels)[:5]}")
    validation.check_int(seed, "seed")
    fractions = tuple(validation.check_number(v, "each split fraction") for v in fractions)
    if len(fractions) != 3:
        raise ValueError(f"fractions must be three numbers (train, validation, test), got {fractions}")
    if not np.isclose(sum(fractions), 1.0) or min(fractions) < 0:
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {fractions}")
    distinct = sorted(set(sequences))
    group_label = {}
    for s, y in zip(sequences, labels, strict=True):
        if group_label.setdefault(s, int(y)) != int(y):
            raise ValueError(f"sequence {s!r} carries both labels: clean the data first")
    rng = np.random.default_rng(seed)
    split_of = {}
    for y in (0, 1):
        members = [s for s in distinct if group_label[s] == y]
        order = rng.permutation(len(members))
        n_val = int(round(fractions[1] * len(members)))
        n_test = int(round(fractions[2] * len(members)))
        for rank, i in enumerate(order):
            if rank < n_test:
                split_of[members[i]] = "test"
            elif rank < n_test + n_val:
                split_of[members[i]] = "validation"
            else:
                split_of[members[i]] = "train"
    return np.array([split_of[s] for s in sequences])


def _dmol_sequences(path: Path) -> tuple[list[str], np.ndarray]:
    with np.load(path) as f:
        pos, neg = f["positives"], f["negatives"]
    out, labels = [], []
    for label, arr in ((1, pos), (0, neg)):
        present = arr.sum(-1) > 0  # [N, 200]; rows of padding are all zero
        idx = arr.argmax(-1) + 1
        out += seqs_lib.indices_to_strings(np.where(present, idx, 0))
        labels += [label] * len(arr)
    return out, np.array(labels, dtype=np.int32)


def _load_npz_array(path: Path) -> np.ndarray:
    with np.load(path) as f:
        return f["arr_0"]


def row_label_counts(positive: np.ndarray, negative: np.ndarray) -> dict[str, tuple[int, int]]:
    """`{sequence: (hemolytic rows, non-hemolytic rows)}` over integer-coded `[N, L]` arrays
    of the two classes (0 = padding): how often each sequence was reported with each label."""
    rows: dict[str, list[int]] = {}
    for column, group in ((0, positive), (1, negative)):
        for seq in seqs_lib.indices_to_strings(group):
            rows.setdefault(seq, [0, 0])[column] += 1
    return {k: (v[0], v[1]) for k, v in rows.items()}


def load_dbaasp_row_labels() -> dict[str, tuple[int, int]]:
    """`row_label_counts` of the raw DBAASP files (before merging and dropping conflicts)."""
    return row_label_counts(_load_npz_array(fetch("hemo-positive.npz")), _load_npz_array(fetch("hemo-negative.npz")))


def load_dmol() -> tuple[list[str], np.ndarray]:
    """All 634 dmol-book peptides and their labels as stored (1 = "hemolytic"), unsplit."""
    return _dmol_sequences(fetch("dmol-hemolytic.npz"))


def load_dbaasp_cleaned() -> Cleaned:
    """The cleaned DBAASP set straight from the verified raw files (no TFDS)."""
    return clean_dbaasp(
        _load_npz_array(fetch("hemo-positive.npz")), _load_npz_array(fetch("hemo-negative.npz"))
    )


# ----------------------------------------------------------------------------- TFDS


_DBAASP_DESCRIPTION = f"""\
Hemolysis (lysis of red blood cells) labels for peptides from DBAASP, as prepared by Ansari &
White (2023). Raw: {DBAASP_COUNTS['rows']} rows ({DBAASP_COUNTS['rows_positive']} hemolytic,
{DBAASP_COUNTS['rows_negative']} non-hemolytic) holding {DBAASP_COUNTS['distinct']} distinct
sequences, {DBAASP_COUNTS['conflicting']} of which occur with both labels. Cleaning merges
identical sequences and drops the conflicting ones: {DBAASP_COUNTS['kept']} sequences remain,
about 15 % hemolytic. Splits 80/10/10, stratified, no sequence in two splits."""

_DMOL_DESCRIPTION = """\
The 634 peptides of the dmol-book XAI chapter (Barrett & White 2021): 317 labelled
hemolytic and 317 non-hemolytic, as stored in that file. Kept for a case study: none of
the "hemolytic" sequences occurs in the DBAASP files, while 225 of the 315 distinct
"non-hemolytic" ones do, with hemolytic rows far above the base rate, which makes a label
swap plausible (a hypothesis, not established; chapter 14)."""


class HemolyticPeptides(tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for hemolytic peptides (TFDS name `hemolytic_peptides`)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release: dbaasp and dmol configs."}
    BUILDER_CONFIGS = [
        tfds.core.BuilderConfig(name="dbaasp", description=_DBAASP_DESCRIPTION),
        tfds.core.BuilderConfig(name="dmol", description=_DMOL_DESCRIPTION),
    ]
    DEFAULT_CONFIG_NAME = "dbaasp"

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.builder_config.description,
            features=tfds.features.FeaturesDict(
                {
                    "sequence": tfds.features.Text(),
                    "label": tfds.features.ClassLabel(names=list(LABEL_NAMES)),
                    "n_rows": np.int32,
                }
            ),
            supervised_keys=("sequence", "label"),
            homepage="https://dbaasp.org",
            citation=(
                "Ansari M, White AD. Serverless Prediction of Peptide Properties with "
                "Recurrent Neural Networks. J Chem Inf Model 63(8):2546-2553 (2023)."
                if self.builder_config.name == "dbaasp"
                else "Barrett R, White AD. Investigating Active Learning and Meta-Learning "
                "for Iterative Peptide Design. J Chem Inf Model 61(1):95-105 (2021)."
            ),
        )

    def _split_generators(self, dl_manager):
        # Downloads go through `fetch` (sha256-verified, clear errors), not dl_manager.
        del dl_manager
        if self.builder_config.name == "dbaasp":
            cleaned = load_dbaasp_cleaned()
            if {k: cleaned.counts[k] for k in DBAASP_COUNTS} != DBAASP_COUNTS:
                raise DataError(f"raw DBAASP counts {cleaned.counts} differ from {DBAASP_COUNTS}")
            seqs, labels, n_rows = cleaned.sequences, cleaned.labels, cleaned.n_rows
        else:
            seqs, labels = _dmol_sequences(fetch("dmol-hemolytic.npz"))
            n_rows = np.ones(len(seqs), dtype=np.int32)
        split = assign_splits(seqs, labels)
        return {
            name: self._generate_examples(
                [(i, seqs[i], int(labels[i]), int(n_rows[i])) for i in np.flatnonzero(split == name)]
            )
            for name in SPLITS
        }

    def _generate_examples(self, rows):
        for i, s, y, n in rows:
            yield f"{i:06d}", {"sequence": s, "label": y, "n_rows": n}


def builder(config: str = "dbaasp", *, data_dir: Path | None = None) -> HemolyticPeptides:
    """The prepared builder (downloads and prepares on first use)."""
    if config not in ("dbaasp", "dmol"):
        raise ValueError(f"unknown config {config!r}; use 'dbaasp' or 'dmol'")
    data_dir = Path(data_dir) if data_dir is not None else data_root() / "tfds"
    b = HemolyticPeptides(config=config, data_dir=str(data_dir), file_format="array_record")
    # TFDS draws its progress bars with tqdm.auto: inside a notebook kernel that is an
    # ipywidget, and a built page holding one loads require.js and the widget manager from a
    # CDN (a page error offline). Preparing takes seconds, so no bar; the caller's setting
    # is restored afterwards.
    was_on = bool(getattr(tfds_tqdm, "_active", True))  # TFDS has no public getter
    tfds.display_progress_bar(False)
    try:
        b.download_and_prepare()
    finally:
        tfds.display_progress_bar(was_on)
    return b


class Split(NamedTuple):
    x: np.ndarray  # [N, L, A] float32 one-hot
    y: np.ndarray  # [N] int32, 1 = hemolytic
    sequences: list[str]  # [N]


@functools.lru_cache(maxsize=16)
def _read_split(config: str, split: str, data_dir: str | None) -> tuple[tuple[str, ...], tuple[int, ...]]:
    b = builder(config, data_dir=Path(data_dir) if data_dir else None)
    source = b.as_data_source(split=split)
    records = source.__getitems__(list(range(len(source))))
    # Sort by sequence: a canonical order that does not depend on TFDS's shuffling.
    pairs = sorted((r["sequence"].decode(), int(r["label"])) for r in records)
    return tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)


def load_split(
    split: str,
    *,
    config: str = "dbaasp",
    length: int = seqs_lib.DEFAULT_LENGTH,
    data_dir: Path | None = None,
) -> Split:
    """One split as numpy arrays: `Split(x[N, L, A], y[N], sequences)`.

    `split` is 'train', 'validation' or 'test'. Rows are sorted by sequence.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {SPLITS}")
    seqs_lib._check_length(length)
    s, y = _read_split(config, split, str(data_dir) if data_dir else None)
    return Split(
        seqs_lib.encode_batch(s, length=length), np.array(y, dtype=np.int32), list(s)
    )
