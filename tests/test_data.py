import hashlib
import json
import urllib.request

import numpy as np
import pytest

from helpers import data as D


@pytest.fixture(scope="module")
def cleaned():
    return D.load_dbaasp_cleaned()


@pytest.fixture(scope="module")
def splits():
    return {s: D.load_split(s) for s in D.SPLITS}


# --------------------------------------------------------------------------- downloads


def test_cached_files_match_their_sha256():
    for name, (_, sha) in D.DATA_FILES.items():
        path = D.fetch(name)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sha


def test_corrupted_cache_names_file_url_and_both_hashes(tmp_path):
    bad = tmp_path / "hemo-positive.npz"
    bad.write_bytes(b"not the data")
    actual = hashlib.sha256(b"not the data").hexdigest()
    url, expected = D.DATA_FILES["hemo-positive.npz"]
    with pytest.raises(D.DataError) as err:
        D.fetch("hemo-positive.npz", cache_dir=tmp_path)
    msg = str(err.value)
    for part in ("corrupted", url, expected, actual, str(bad), "Delete the file"):
        assert part in msg


def test_failed_download_explains_manual_placement(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    url, _ = D.DATA_FILES["dmol-hemolytic.npz"]
    with pytest.raises(D.DataError) as err:
        D.fetch("dmol-hemolytic.npz", cache_dir=tmp_path)
    msg = str(err.value)
    assert url in msg and str(tmp_path / "dmol-hemolytic.npz") in msg and "by hand" in msg
    assert not list(tmp_path.iterdir())  # no partial file left behind


def test_download_with_wrong_content_is_rejected_and_not_kept(tmp_path, monkeypatch):
    import io

    class Fake(io.BytesIO):
        def __enter__(self):
            return self

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Fake(b"tampered"))
    with pytest.raises(D.DataError, match="expected"):
        D.fetch("hemo-negative.npz", cache_dir=tmp_path)
    assert not list(tmp_path.iterdir())


def test_unknown_file_name():
    with pytest.raises(ValueError, match="unknown data file"):
        D.fetch("nope.npz")


def test_data_root_honours_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("IDL_JAX_DATA_DIR", str(tmp_path))
    assert D.data_root() == tmp_path


# --------------------------------------------------------------------------- cleaning


def test_counts_measured_on_the_raw_files(cleaned):
    c = cleaned.counts
    assert {k: c[k] for k in D.DBAASP_COUNTS} == D.DBAASP_COUNTS
    assert c["distinct"] - c["conflicting"] == c["kept"] == len(cleaned.sequences)
    assert 0.14 < cleaned.labels.mean() < 0.16  # "about 15 % hemolytic"
    assert cleaned.n_rows.sum() < c["rows"]  # conflicting rows were dropped


def test_counts_are_stated_in_the_dataset_description():
    text = " ".join(D._DBAASP_DESCRIPTION.split())
    for k in ("rows", "distinct", "conflicting", "kept"):
        assert str(D.DBAASP_COUNTS[k]) in text


def test_cleaning_on_a_hand_made_case():
    enc = {"A": 1, "K": 12, "L": 11}

    def rows(*seqs):
        out = np.zeros((len(seqs), 4), int)
        for i, s in enumerate(seqs):
            out[i, : len(s)] = [enc[c] for c in s]
        return out

    c = D.clean_dbaasp(rows("AK", "AK", "LL"), rows("LL", "KA", "A"))
    assert c.sequences == ["A", "AK", "KA"]  # LL carries both labels and is dropped
    assert list(c.labels) == [0, 1, 0]
    assert list(c.n_rows) == [1, 2, 1]
    assert c.counts["conflicting"] == 1 and c.counts["distinct"] == 4
    counts = D.row_label_counts(rows("AK", "AK", "LL"), rows("LL", "KA", "A"))
    assert counts == {"AK": (2, 0), "LL": (1, 1), "KA": (0, 1), "A": (0, 1)}


# --------------------------------------------------------------------------- splits


def test_splits_partition_the_cleaned_set_without_shared_sequences(cleaned, splits):
    sets = {k: set(v.sequences) for k, v in splits.items()}
    assert sum(len(s) for s in sets.values()) == len(cleaned.sequences)
    assert set().union(*sets.values()) == set(cleaned.sequences)
    assert not sets["train"] & sets["test"]
    assert not sets["train"] & sets["validation"]
    assert not sets["validation"] & sets["test"]


def test_splits_are_80_10_10_and_stratified(cleaned, splits):
    n = len(cleaned.sequences)
    for name, frac in zip(D.SPLITS, D.SPLIT_FRACTIONS, strict=True):
        assert abs(len(splits[name].y) / n - frac) < 0.005
        assert abs(splits[name].y.mean() - cleaned.labels.mean()) < 0.01


def test_split_labels_match_the_cleaned_data(cleaned, splits):
    truth = dict(zip(cleaned.sequences, cleaned.labels, strict=True))
    for sp in splits.values():
        assert [truth[s] for s in sp.sequences] == list(sp.y)


def test_assign_splits_is_deterministic_and_groups_duplicates():
    seqs = [f"A{'K' * i}" for i in range(50)] * 2
    labels = np.array([i % 3 == 0 for i in range(50)] * 2, dtype=int)
    a = D.assign_splits(seqs, labels, seed=1)
    assert (a == D.assign_splits(seqs, labels, seed=1)).all()
    assert (a[:50] == a[50:]).all()  # the duplicate rows share a split
    assert not (a == D.assign_splits(seqs, labels, seed=2)).all()
    with pytest.raises(ValueError, match="carries both labels"):
        D.assign_splits(["AK", "AK"], np.array([0, 1]))


def test_load_split_arrays(splits):
    sp = splits["train"]
    assert sp.x.shape == (len(sp.y), 190, 21) and sp.x.dtype == np.float32
    assert sp.y.dtype == np.int32 and set(np.unique(sp.y)) == {0, 1}
    with pytest.raises(ValueError, match="unknown split"):
        D.load_split("dev")


def test_dmol_config_has_the_634_peptides():
    sp = {s: D.load_split(s, config="dmol") for s in D.SPLITS}
    assert sum(len(v.y) for v in sp.values()) == 634
    assert sum(v.y.sum() for v in sp.values()) == 317
    sets = [set(v.sequences) for v in sp.values()]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    with pytest.raises(ValueError, match="unknown config"):
        D.builder("other")


def test_tfds_builder_is_array_record_and_tensorflow_free():
    import sys

    b = D.builder("dbaasp")
    assert b.info.file_format.value == "array_record"
    assert b.info.splits["train"].num_examples == 4489
    assert "tensorflow" not in sys.modules  # TFDS ran without importing TensorFlow
    json.dumps(b.info.as_json)  # the metadata is serialisable


def test_dmol_peptides_looked_up_in_the_raw_dbaasp_rows():
    """The counts chapter 14 and the dmol description state, by exact match of distinct
    sequences against the 9316 raw rows (counted over the 634 stored rows, one more
    "non-hemolytic" peptide is found, because the file stores it twice)."""
    rows = D.load_dbaasp_row_labels()
    seqs, labels = D.load_dmol()
    pos = {q for q, y in zip(seqs, labels) if y == 1}
    neg = {q for q, y in zip(seqs, labels) if y == 0}
    assert (len(pos), len(neg), len(pos & neg)) == (317, 315, 0)
    assert not pos & set(rows)
    found = [q for q in neg if q in rows]
    assert len(found) == 225
    assert sum(rows[q][0] for q in found) == 251 and sum(rows[q][1] for q in found) == 294
    only_h = sum(rows[q][1] == 0 for q in found)
    only_n = sum(rows[q][0] == 0 for q in found)
    assert (only_h, only_n, len(found) - only_h - only_n) == (82, 91, 52)
    assert sum(q in rows for q, y in zip(seqs, labels) if y == 0) == 226


def test_preparing_draws_no_progress_bar_and_restores_the_setting(tmp_path, monkeypatch, capsys):
    # A tqdm.auto bar inside a notebook kernel is an ipywidget; a built page that holds one
    # fetches require.js from a CDN (the offline browser test failed on chapter 14 for this).
    from tensorflow_datasets.core.utils import tqdm_utils

    made = []
    real = tqdm_utils.tqdm_lib.tqdm

    def counting(*args, **kwargs):
        made.append(kwargs.get("desc"))
        return real(*args, **kwargs)

    monkeypatch.setattr(tqdm_utils.tqdm_lib, "tqdm", counting)
    tqdm_utils.enable_progress_bar()
    b = D.builder("dmol", data_dir=tmp_path / "tfds")  # a fresh folder: prepares from scratch
    assert b.info.splits["train"].num_examples > 0
    assert made == [], f"TFDS drew progress bars while preparing: {made}"
    assert tqdm_utils._active is True  # the caller's setting is back
    tqdm_utils.disable_progress_bar()
    D.builder("dmol", data_dir=tmp_path / "tfds2")
    assert tqdm_utils._active is False
    tqdm_utils.enable_progress_bar()
