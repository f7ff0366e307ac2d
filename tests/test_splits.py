from itertools import combinations

import numpy as np
import pytest

from helpers import counterfactual as CF
from helpers import splits as SP


def _family_peptides(n=120, seed=0):
    """Random peptides plus mutated copies (substitutions, insertions, deletions), over a
    small alphabet so that many pairs lie within two edits, and a few very short ones."""
    rng = np.random.default_rng(seed)
    out = ["".join(rng.choice(list("AKLW"), size=rng.integers(4, 14))) for _ in range(n // 2)]
    while len(out) < n:
        s = list(out[rng.integers(len(out))])
        for _ in range(rng.integers(1, 4)):
            op, i = rng.integers(3), rng.integers(len(s))
            if op == 0:
                s[i] = rng.choice(list("AKLW"))
            elif op == 1 and len(s) > 1:
                del s[i]
            else:
                s.insert(i, rng.choice(list("AKLW")))
        out.append("".join(s))
    return out + ["K", "KK", "AKL", "W"]


def _brute_pairs(seqs, k):
    return {(i, j): d for i, j in combinations(range(len(seqs)), 2) if (d := CF.edit_distance(seqs[i], seqs[j])) <= k}


def test_edit_distances_match_the_reference_dynamic_programme():
    seqs = _family_peptides(seed=1)
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, len(seqs), 300), rng.integers(0, len(seqs), 300)
    a, b = [seqs[t] for t in i], [seqs[t] for t in j]
    np.testing.assert_array_equal(SP.edit_distances(a, b), [CF.edit_distance(p, q) for p, q in zip(a, b)])
    assert list(SP.edit_distances(["KITTEN", "A", "ABC"], ["SITTING", "A", "CBA"])) == [3, 0, 2]


@pytest.mark.parametrize("k", [0, 1, 2])
def test_near_pairs_equal_brute_force(k):
    seqs = _family_peptides(seed=k)
    seqs = seqs + seqs[:3]  # exact duplicates are distance 0
    pairs, dist = SP.near_pairs(seqs, max_distance=k)
    assert {tuple(map(int, p)): int(d) for p, d in zip(pairs, dist)} == _brute_pairs(seqs, k)
    assert (pairs[:, 0] < pairs[:, 1]).all()


def test_clusters_are_the_connected_components_of_near_pairs():
    seqs = _family_peptides(seed=3)
    cid = SP.clusters(seqs)
    parent = list(range(len(seqs)))

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i

    for i, j in _brute_pairs(seqs, 2):
        parent[root(i)] = root(j)
    roots = [root(i) for i in range(len(seqs))]
    for i, j in combinations(range(len(seqs)), 2):
        assert (cid[i] == cid[j]) == (roots[i] == roots[j])
    sizes = np.bincount(cid)
    assert (np.diff(sizes) <= 0).all()  # id 0 is the largest cluster


def test_nearest_distance_brute_force():
    seqs = _family_peptides(seed=4)
    q, r = seqs[:30], seqs[30:]
    want = [min([CF.edit_distance(a, b) for b in r] + [3]) for a in q]
    np.testing.assert_array_equal(SP.nearest_distance(q, r, max_distance=2), want)


def test_cluster_split_keeps_clusters_whole_and_near_the_fractions():
    seqs = _family_peptides(n=400, seed=5)
    seqs = list(dict.fromkeys(seqs))
    rng = np.random.default_rng(0)
    y = (rng.random(len(seqs)) < 0.3).astype(int)
    names = SP.cluster_split(seqs, y, seed=0)
    pairs, _ = SP.near_pairs(seqs)  # equal to brute force (test above)
    assert len(pairs) > 100 and (names[pairs[:, 0]] == names[pairs[:, 1]]).all()
    np.testing.assert_array_equal(names, SP.cluster_split(seqs, y, seed=0))
    cid = SP.clusters(seqs)
    biggest = cid == 0
    if biggest.sum() > 0.05 * len(seqs):
        assert (names[biggest] == "train").all()
    assert SP.split_hash(seqs, names) != SP.split_hash(seqs, SP.cluster_split(seqs, y, seed=1))


def test_bad_input_names_the_argument():
    with pytest.raises(TypeError, match="sequences must be a list"):
        SP.near_pairs("AKLW")
    with pytest.raises(TypeError, match=r"sequences\[1\] must be a non-empty string"):
        SP.clusters(["AK", ""])
    with pytest.raises(ValueError, match="max_distance must be at most 2"):
        SP.near_pairs(["AK", "AL"], max_distance=3)
    with pytest.raises(ValueError, match="max_distance must be a non-negative integer"):
        SP.near_pairs(["AK", "AL"], max_distance=-1)
    with pytest.raises(ValueError, match="must pair up"):
        SP.edit_distances(["AK"], ["AK", "AL"])
    with pytest.raises(ValueError, match="labels must be"):
        SP.cluster_split(["AK", "AL"], np.array([0, 2]))
    with pytest.raises(ValueError, match="kind must be 'random' or 'cluster'"):
        SP.make_split("scaffold", ["AK"], np.array([0]), seed=0)


def test_shipped_comparison_comes_from_the_script():
    from helpers import data, model, training

    rec = SP.load_comparison()
    seeds = rec["settings"]["seeds"]
    assert [(r["kind"], r["seed"]) for r in rec["runs"]] == [(k, s) for s in seeds for k in ("random", "cluster")]
    cleaned = data.load_dbaasp_cleaned()
    seqs, y = list(cleaned.sequences), np.asarray(cleaned.labels)
    names = SP.make_split("cluster", seqs, y, seed=rec["settings"]["model_seed"])
    run = next(r for r in rec["runs"] if r["kind"] == "cluster" and r["seed"] == rec["settings"]["model_seed"])
    assert SP.split_hash(seqs, names) == run["split_sha256"]
    # The shipped cluster-split model scores what the record says on its test split.
    params = model.load_params(model.pretrained_dir() / f"{SP.CLUSTER_MODEL}.npz")
    test = [s for s, n in zip(seqs, names) if n == "test"]
    logits = training.predict_batched(model.make_model().apply, params, SP.seqs_lib.encode_batch(test))
    from helpers.metrics import auroc

    assert auroc(y[names == "test"], logits) == pytest.approx(run["test_auroc"], abs=1e-6)
    # Rerunning the script's small version reproduces its shipped record.
    small, _ = SP.compare_splits(seeds=(0,), epochs=2, patience=2, keep_params=None)
    for got, want in zip(small["runs"], rec["small"]["runs"], strict=True):
        assert got["split_sha256"] == want["split_sha256"]
        assert got["test_auroc"] == pytest.approx(want["test_auroc"], abs=1e-3)
        assert got["test_ap"] == pytest.approx(want["test_ap"], abs=1e-3)
