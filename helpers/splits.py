"""Near-duplicate peptides and splits by sequence clusters.

Removing identical sequences does not remove analogues: DBAASP holds series of peptides that
differ by one or two residues. This module finds every pair of peptides within a small edit
(Levenshtein) distance, groups them by single linkage (two peptides are in one cluster when a
chain of such pairs joins them), and assigns whole clusters to train / validation / test.

Shapes: sequences `[N]` (strings), labels `[N]` in {0, 1}, pairs `[P, 2]` int (i < j),
cluster ids `[N]` int.

Speed: candidate pairs come from deletion neighbourhoods (two strings within edit distance
k share a string obtained by deleting at most k characters from each, the SymSpell idea),
and are verified by `edit_distances`, a Levenshtein recursion vectorised over pairs. For the
5611 DBAASP peptides (k = 2) about 15 000 candidate pairs are verified instead of all 15.7
million.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from helpers import sequences as seqs_lib

__all__ = [
    "edit_distances",
    "near_pairs",
    "clusters",
    "nearest_distance",
    "cluster_split",
    "split_hash",
    "make_split",
    "compare_splits",
    "load_comparison",
]

COMPARISON_FILE = "split_comparison.json"
CLUSTER_MODEL = "hemolysis_cnn_cluster"


def _check_sequences(sequences: object, name: str = "sequences") -> list[str]:
    if isinstance(sequences, str) or not isinstance(sequences, Sequence):
        raise TypeError(
            f"{name} must be a list of peptide strings, got {type(sequences).__name__}; "
            f"wrap a single peptide in a list"
        )
    for i, s in enumerate(sequences):
        if not isinstance(s, str) or not s:
            raise TypeError(f"{name}[{i}] must be a non-empty string, got {s!r}")
    return list(sequences)


def _check_k(max_distance: object) -> int:
    if not isinstance(max_distance, (int, np.integer)) or isinstance(max_distance, bool) or max_distance < 0:
        raise ValueError(f"max_distance must be a non-negative integer, got {max_distance!r}")
    return int(max_distance)


def edit_distances(a: Sequence[str], b: Sequence[str]) -> np.ndarray:
    """Levenshtein distances `[P]` between `a[p]` and `b[p]` (unit-cost substitution,
    insertion, deletion), computed for all pairs at once.

    Row i of the dynamic programme, d[i, j] = distance between a[:i] and b[:j], is computed
    for every pair in one numpy step: first without insertions,
    t[j] = min(d[i-1, j] + 1, d[i-1, j-1] + [a_i != b_j]), then insertions by a running
    minimum, d[i, j] = min_{k <= j} (t[k] + j - k) = j + cummin(t[k] - k). Strings are
    padded to a common length; d[i, j] only depends on the prefixes, so each pair reads its
    answer at (len a, len b).
    """
    a = _check_sequences(a, "a")
    b = _check_sequences(b, "b")
    if len(a) != len(b):
        raise ValueError(f"a and b must pair up: got {len(a)} and {len(b)} strings")
    if not a:
        return np.zeros(0, dtype=np.int64)
    la = np.array([len(s) for s in a])
    lb = np.array([len(s) for s in b])
    A = np.zeros((len(a), la.max()), np.uint8)
    B = np.zeros((len(b), lb.max()), np.uint8)
    for i, s in enumerate(a):
        A[i, : len(s)] = np.frombuffer(s.encode(), np.uint8)
    for i, s in enumerate(b):
        B[i, : len(s)] = np.frombuffer(s.encode(), np.uint8)
    cols = np.arange(B.shape[1] + 1)
    d = np.broadcast_to(cols, (len(a), len(cols))).copy()  # row 0: d[0, j] = j
    out = np.where(la == 0, lb, 0)
    rows = np.arange(len(a))
    for i in range(1, A.shape[1] + 1):
        sub = d[:, :-1] + (A[:, i - 1, None] != B)
        t = np.empty_like(d)
        t[:, 0] = i
        t[:, 1:] = np.minimum(d[:, 1:] + 1, sub)
        d = cols + np.minimum.accumulate(t - cols, axis=1)
        done = la == i
        out[done] = d[rows[done], lb[done]]
    return out


_BASE = np.uint64(1_000_003)


def _variant_keys(seqs: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Hash keys `[V]` of every string obtained from each peptide by deleting at most k <= 2
    characters, and the peptide index `[V]` of each (one entry per distinct key and peptide).

    A key is a polynomial hash of the variant (wrapping uint64 arithmetic) mixed with its
    length. Equal variants get equal keys; unequal ones may collide, which only adds a
    candidate pair that `edit_distances` then rejects, so the search stays exact.
    """
    if k > 2:
        raise ValueError(f"max_distance must be at most 2 for the deletion index, got {k}")
    keys, owners = [], []
    lengths = np.array([len(s) for s in seqs])
    with np.errstate(over="ignore"):
        for n in np.unique(lengths):
            ids = np.flatnonzero(lengths == n)
            S = np.array([np.frombuffer(seqs[i].encode(), np.uint8) for i in ids], np.uint64)
            P = np.zeros((len(ids), n + 1), np.uint64)  # P[:, i]: hash of s[:i]
            for i in range(n):
                P[:, i + 1] = P[:, i] * _BASE + S[:, i]
            power = np.ones(n + 1, np.uint64)  # power[e] = BASE ** e
            for e in range(1, n + 1):
                power[e] = power[e - 1] * _BASE

            def piece(a, b):  # hash of s[a:b] for index arrays a <= b, [m, len(a)]
                return P[:, b] - P[:, a] * power[b - a]

            found = [(P[:, n:], n)]  # the peptide itself
            if k >= 1:
                p = np.arange(n)
                found.append((piece(0 * p, p) * power[n - p - 1] + piece(p + 1, 0 * p + n), n - 1))
            if k >= 2 and n >= 2:
                p, q = np.triu_indices(n, 1)
                h = piece(0 * p, p) * power[n - p - 2] + piece(p + 1, q) * power[n - q - 1] + piece(q + 1, 0 * q + n)
                found.append((h, n - 2))
            for h, length in found:
                keys.append((h * _BASE + np.uint64(length)).ravel())
                owners.append(np.repeat(ids, h.shape[1]))
    keys, owners = np.concatenate(keys), np.concatenate(owners)
    order = np.lexsort((owners, keys))
    keys, owners = keys[order], owners[order]
    new = np.r_[True, (keys[1:] != keys[:-1]) | (owners[1:] != owners[:-1])]
    return keys[new], owners[new]


def _shared_key_pairs(keys: np.ndarray, owners: np.ndarray) -> np.ndarray:
    """Distinct pairs `[P, 2]` (i < j) of owners that share a key; `keys` sorted."""
    start = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    size = np.diff(np.r_[start, len(keys)])
    end = np.repeat(start + size, size)  # for each entry, the end of its group
    later = end - np.arange(len(keys)) - 1  # how many entries follow it in its group
    first = np.repeat(np.arange(len(keys)), later)
    offset = np.arange(len(first)) - np.repeat(np.cumsum(later) - later, later)
    a, b = owners[first], owners[first + 1 + offset]
    code = np.unique(np.minimum(a, b) * (owners.max() + 1) + np.maximum(a, b))
    return np.stack([code // (owners.max() + 1), code % (owners.max() + 1)], axis=1)


def near_pairs(sequences: Sequence[str], *, max_distance: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """All pairs of peptides within `max_distance` edits: `(pairs [P, 2], distances [P])`,
    i < j, sorted. Identical strings count as distance 0.

    Exact (no pair is missed): if d(a, b) <= k, deleting the <= k characters of a that an
    optimal alignment substitutes or deletes, and those of b that it substitutes or inserts,
    leaves the same string; candidates sharing such a variant are then verified.
    """
    seqs = _check_sequences(sequences)
    k = _check_k(max_distance)
    if len(seqs) < 2:
        return np.zeros((0, 2), np.int64), np.zeros(0, np.int64)
    pairs = _shared_key_pairs(*_variant_keys(seqs, k))
    n = np.array([len(s) for s in seqs])
    pairs = pairs[np.abs(n[pairs[:, 0]] - n[pairs[:, 1]]) <= k]
    dist = np.zeros(len(pairs), np.int64)
    # Verify in chunks of similar length, so the padded recursion stays short.
    order = np.argsort(n[pairs[:, 0]], kind="stable")
    for start in range(0, len(order), 4096):
        idx = order[start : start + 4096]
        dist[idx] = edit_distances([seqs[i] for i in pairs[idx, 0]], [seqs[j] for j in pairs[idx, 1]])
    keep = dist <= k
    return pairs[keep], dist[keep]


def clusters(sequences: Sequence[str], *, max_distance: int = 2) -> np.ndarray:
    """Single-linkage cluster ids `[N]`: peptides i and j share an id when a chain of
    peptides, each within `max_distance` edits of the next, joins them. Ids are numbered by
    decreasing cluster size (0 is the largest), ties by first member."""
    seqs = _check_sequences(sequences)
    pairs, _ = near_pairs(seqs, max_distance=max_distance)
    n = len(seqs)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, raw = connected_components(graph, directed=False)
    sizes = np.bincount(raw)
    first = np.full(len(sizes), n)
    np.minimum.at(first, raw, np.arange(n))
    rank = np.lexsort((first, -sizes))  # raw ids, largest cluster first
    relabel = np.empty_like(rank)
    relabel[rank] = np.arange(len(rank))
    return relabel[raw]


def nearest_distance(queries: Sequence[str], references: Sequence[str], *, max_distance: int = 2) -> np.ndarray:
    """`[Q]`: for each query, the smallest edit distance to any reference peptide, or
    `max_distance + 1` when none lies within `max_distance`."""
    q = _check_sequences(queries, "queries")
    r = _check_sequences(references, "references")
    k = _check_k(max_distance)
    pairs, dist = near_pairs(q + r, max_distance=k)
    best = np.full(len(q), k + 1, np.int64)
    cross = (pairs[:, 0] < len(q)) & (pairs[:, 1] >= len(q))  # i < j: queries come first
    np.minimum.at(best, pairs[cross, 0], dist[cross])
    return best


def cluster_split(
    sequences: Sequence[str],
    labels: np.ndarray,
    *,
    max_distance: int = 2,
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> np.ndarray:
    """Train / validation / test names `[N]` with every cluster of `clusters` on one side.

    Clusters are shuffled (from `seed`) and dealt into the split whose share of peptides of
    the cluster's majority label is furthest below its target (a greedy stratification),
    except that a cluster larger than half of the test target always goes to training (a
    giant cluster of analogues would otherwise make the test set one family).
    Deterministic for a given seed and input order.
    """
    seqs = _check_sequences(sequences)
    labels = np.asarray(labels)
    if labels.shape != (len(seqs),) or not np.isin(labels, (0, 1)).all():
        raise ValueError(f"labels must be [N] = [{len(seqs)}] in {{0, 1}}, got shape {labels.shape}")
    if len(fractions) != 3 or not np.isclose(sum(fractions), 1.0) or min(fractions) < 0:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    cid = clusters(seqs, max_distance=max_distance)
    n_clusters = cid.max() + 1
    size = np.bincount(cid, minlength=n_clusters)
    pos = np.bincount(cid, weights=labels, minlength=n_clusters)
    majority = (2 * pos >= size).astype(int)
    target = np.outer(fractions, [np.sum(labels == 0), np.sum(labels == 1)])  # [3, 2]
    filled = np.zeros((3, 2))
    side = np.zeros(n_clusters, np.int64)
    rng = np.random.default_rng(seed)
    for c in rng.permutation(n_clusters):
        y = majority[c]
        if size[c] > 0.5 * fractions[2] * len(seqs):
            s = 0
        else:
            s = int(np.argmax((target[:, y] - filled[:, y]) / np.maximum(target[:, y], 1)))
        side[c] = s
        filled[s] += [size[c] - pos[c], pos[c]]
    names = np.array(["train", "validation", "test"])
    return names[side[cid]]


def split_hash(sequences: Sequence[str], assignment: Sequence[str]) -> str:
    """sha256 of the sorted `sequence<TAB>split` lines: a short name for a split."""
    lines = sorted(f"{s}\t{a}" for s, a in zip(sequences, assignment, strict=True))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


# ----------------------------------------------------------------------------- random vs cluster split


def make_split(kind: str, sequences: Sequence[str], labels: np.ndarray, *, seed: int, max_distance: int = 2) -> np.ndarray:
    """Split names `[N]` of one of two kinds, 80/10/10: `"random"` (distinct sequences,
    stratified by label: `data.assign_splits`) or `"cluster"` (`cluster_split`)."""
    from helpers import data as data_lib

    if kind == "random":
        return data_lib.assign_splits(list(sequences), np.asarray(labels), seed=seed)
    if kind == "cluster":
        return cluster_split(sequences, labels, seed=seed, max_distance=max_distance)
    raise ValueError(f"kind must be 'random' or 'cluster', got {kind!r}")


def _as_split(sequences: Sequence[str], labels: np.ndarray, mask: np.ndarray):
    from helpers import data as data_lib

    s = [q for q, m in zip(sequences, mask, strict=True) if m]
    return data_lib.Split(seqs_lib.encode_batch(s), np.asarray(labels)[mask].astype(np.int32), s)


def compare_splits(*, seeds: Sequence[int] = (0, 1, 2, 3, 4), epochs: int = 20, patience: int = 8,
                   max_distance: int = 2, keep_params: int | None = 0) -> tuple[dict, dict]:
    """Trains the CNN with the shipped settings (`training.DEFAULTS`, but `epochs` and
    `patience` as given) on a random and on a cluster split of the cleaned DBAASP peptides,
    once per seed (the seed draws both the split and the initialisation), and scores each on
    its own test split. Returns `(record, params)`: the record (JSON-ready: per run the split
    hash, sizes, best epoch, test AUROC, average precision, MCC) and the parameters of the
    cluster-split run with seed `keep_params` (empty if None)."""
    from helpers import data as data_lib
    from helpers import training

    cleaned = data_lib.load_dbaasp_cleaned()
    seqs, labels = list(cleaned.sequences), np.asarray(cleaned.labels)
    runs, kept = [], {}
    for seed in seeds:
        for kind in ("random", "cluster"):
            names = make_split(kind, seqs, labels, seed=seed, max_distance=max_distance)
            tr, va, te = (_as_split(seqs, labels, names == n) for n in ("train", "validation", "test"))
            result = training.train(train_split=tr, val_split=va, seed=seed, epochs=epochs,
                                    patience=patience, progress=False)
            logits = training.predict_batched(training.model_lib.make_model().apply, result.params, te.x)
            m = training.metrics_lib.classification_metrics(te.y, logits)
            runs.append({
                "kind": kind, "seed": int(seed), "split_sha256": split_hash(seqs, names),
                "n": {n: int((names == n).sum()) for n in ("train", "validation", "test")},
                "n_test_positive": int(te.y.sum()), "best_epoch": result.best_epoch,
                "epochs_run": len(result.history),
                "val_auroc": max(h["val_auroc"] for h in result.history),
                "test_auroc": m["auroc"], "test_ap": training.metrics_lib.average_precision(te.y, logits),
                "test_mcc": m["mcc"],
            })
            if kind == "cluster" and seed == keep_params:
                kept = result.params
    record = {"settings": {"seeds": [int(s) for s in seeds], "epochs": epochs, "patience": patience,
                           "max_distance": max_distance, "model_seed": keep_params,
                           **{k: v for k, v in training.DEFAULTS.items() if k not in ("seed", "epochs", "patience")}},
              "runs": runs}
    return record, kept


def load_comparison() -> dict:
    """The shipped record of `compare_splits` (made by `python -m helpers.splits`)."""
    from helpers.model import pretrained_dir

    path = pretrained_dir() / COMPARISON_FILE
    if not path.exists():
        raise FileNotFoundError(f"no shipped comparison {path}; create it with `python -m helpers.splits`")
    return json.loads(path.read_text())


def main(argv: list[str] | None = None) -> None:
    from helpers import model as model_lib

    p = argparse.ArgumentParser(description="Train the CNN on random and cluster splits and save the comparison.")
    p.add_argument("--out", type=Path, default=model_lib.pretrained_dir())
    p.add_argument("--seeds", type=int, default=5, help="replicates (split draw and initialisation) per kind")
    p.add_argument("--epochs", type=int, default=20)
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    record, params = compare_splits(seeds=tuple(range(a.seeds)), epochs=a.epochs)
    # A small version of the same runs, which tests/test_splits.py reruns and compares.
    record["small"] = compare_splits(seeds=(0,), epochs=2, patience=2, keep_params=None)[0]
    record["command"] = "python -m helpers.splits " + " ".join(argv if argv is not None else sys.argv[1:])
    record["seconds"] = round(time.perf_counter() - t0, 1)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / COMPARISON_FILE).write_text(json.dumps(record, indent=1) + "\n")
    model_lib.save_params(a.out / f"{CLUSTER_MODEL}.npz", params)
    print(json.dumps([{k: r[k] for k in ("kind", "seed", "test_auroc", "test_ap", "best_epoch")} for r in record["runs"]], indent=0))


if __name__ == "__main__":
    main()
