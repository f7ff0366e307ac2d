"""Counterfactual search: against brute force, edit distances against their definition,
and every reported counterfactual re-checked with the model."""

import itertools

import jax.numpy as jnp
import numpy as np
import pytest

from helpers import counterfactual as C
from helpers import sequences as S


def _lev(a: str, b: str) -> int:
    """Levenshtein distance, the plain recursion-free two-row version (independent of C)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _apply(original: str, edits) -> str:
    """Applies an edit script (positions in the original) from the right, so earlier
    positions stay valid."""
    s = list(original)
    order = sorted(enumerate(edits), key=lambda ie: (ie[1].position, ie[1].kind != "ins", ie[0]), reverse=True)
    for _, e in order:
        if e.kind == "sub":
            assert s[e.position - 1] == e.old
            s[e.position - 1] = e.new
        elif e.kind == "del":
            assert s[e.position - 1] == e.old
            del s[e.position - 1]
        else:
            s.insert(e.position, e.new)
    return "".join(s)


def test_edit_script_is_a_shortest_script():
    rng = np.random.default_rng(0)
    for _ in range(200):
        a = "".join(rng.choice(list("ACKLW"), rng.integers(1, 8)))
        b = "".join(rng.choice(list("ACKLW"), rng.integers(1, 8)))
        script = C.edit_script(a, b)
        assert len(script) == _lev(a, b) == C.edit_distance(a, b) == C._levenshtein(a, b)
        assert _apply(a, script) == b


def test_neighbours_are_exactly_the_peptides_one_edit_away():
    seq, alphabet = "KLW", "KLWA"
    got = C.neighbours(seq, alphabet=alphabet)
    every = {"".join(p) for n in (2, 3, 4) for p in itertools.product(alphabet, repeat=n)}
    assert got == {s for s in every if _lev(seq, s) == 1}
    assert C.neighbours(seq, operations=("sub",), alphabet=alphabet) == {s for s in every if len(s) == 3 and _lev(seq, s) == 1}
    assert all(s[1] == "L" for s in C.neighbours(seq, operations=("sub",), frozen=[1]))
    assert all("L" in s for s in C.neighbours(seq, operations=("sub", "del"), frozen=[1]))
    assert "KW" not in C.neighbours(seq, frozen=[1])


def test_substitution_scan_equals_one_model_call_per_variant(cnn):
    _, f = cnn
    seq = "GLLKRIKKLL"
    scan = C.substitution_scan(f, seq)
    assert scan.logits.shape == (10, 20)
    for i, a in [(0, "A"), (4, "W"), (9, "L")]:
        variant = seq[:i] + a + seq[i + 1 :]
        want = float(f(jnp.asarray(S.encode(variant))[None])[0])
        assert abs(scan.logits[i, S.AMINO_ACIDS.index(a)] - want) < 1e-5
    assert abs(scan.logits[0, S.AMINO_ACIDS.index("G")] - scan.original_logit) < 1e-5


def test_flipping_substitutions_on_a_linear_model():
    """A model whose logit is (count of W) - 1.5: 'AWA' is class 0; one more W flips it."""
    w = np.zeros(21, np.float32)
    w[S.AMINO_ACIDS.index("W") + 1] = 1.0

    def f(x):
        return jnp.einsum("bla,a->b", x, w) - 1.5

    flips = C.flipping_substitutions(C.substitution_scan(f, "AWA", length=8))
    assert {c.sequence for c in flips} == {"WWA", "AWW"}
    assert all(abs(c.logit - 0.5) < 1e-6 for c in flips)
    # minimal edits: from 'AAA' two W are needed; an insertion counts as one edit too
    res = C.search(f, "AAA", max_edits=3, beam_width=None, length=8)
    assert res.min_edits == 2 and res.target == 1
    assert all(c.sequence.count("W") >= 2 and c.distance == 2 for c in res.counterfactuals)


def test_search_equals_brute_force_on_short_peptides(cnn):
    """Substitutions only: the brute force enumerates every peptide of the same length within
    Hamming distance 2 (independent code); all operations: the beam search against the
    exhaustive breadth-first search."""
    _, f = cnn
    for seq in ("KFKQ", "IRPIRP", "WKWKWK", "FRWWRR"):
        logit0 = float(f(jnp.asarray(S.encode(seq, length=16))[None])[0])
        pool = [
            "".join(p) for p in itertools.product(*[[c] + [a for a in S.AMINO_ACIDS if a != c] for c in seq])
            if sum(x != y for x, y in zip(p, seq, strict=True)) <= 2
        ] if len(seq) <= 4 else None
        res_sub = C.search(f, seq, max_edits=2, beam_width=None, operations=("sub",), length=16)
        if pool is not None:
            logits = C.predict_sequences(f, pool, length=16)
            flips = [s for s, lg in zip(pool, logits, strict=True) if (lg > 0) != (logit0 > 0)]
            want = min((sum(x != y for x, y in zip(s, seq, strict=True)) for s in flips), default=None)
            assert res_sub.min_edits == want
        exhaustive = C.search(f, seq, max_edits=2, beam_width=None, length=16)
        beam = C.search(f, seq, max_edits=2, beam_width=16, length=16)
        assert beam.min_edits == exhaustive.min_edits
        for res in (res_sub, exhaustive, beam):
            if res.counterfactuals:
                lg = C.predict_sequences(f, [c.sequence for c in res.counterfactuals])  # full length L = 190
                assert np.all((lg > 0) == (res.target == 1))
                assert all(c.distance == res.min_edits == _lev(seq, c.sequence) for c in res.counterfactuals)


def test_diverse_results_share_no_edited_position(cnn):
    _, f = cnn
    res = C.search(f, "GLLKRIKKLL", max_edits=3, beam_width=32, n_results=5, length=24)
    assert res.counterfactuals
    positions = [{e.position for e in c.edits} for c in res.counterfactuals]
    for a, b in itertools.combinations(positions, 2):
        assert not a & b
    assert [c.logit for c in res.counterfactuals] == sorted((c.logit for c in res.counterfactuals), reverse=res.target == 1)


def test_frozen_positions_are_never_edited(cnn):
    _, f = cnn
    seq = "GLLKRIKKLL"
    frozen = [3, 4, 6, 7]  # the cationic K R K K
    res = C.search(f, seq, max_edits=3, beam_width=32, frozen=frozen, length=24)
    for c in res.counterfactuals:
        assert all(e.kind == "ins" or e.position - 1 not in frozen for e in c.edits)


def test_words_and_highlighting():
    cf = C.Counterfactual("GALKWIKLL", -0.3, C.edit_script("GLLKRIKKLL", "GALKWIKLL"))
    assert C.highlight("GLLKRIKKLL", cf) == "G[L>A]LK[R>W]I[-K]KLL"  # of the two Ks, the first goes
    text = C.describe("GLLKRIKKLL", cf)
    assert text.startswith("If residue 2 (L) were A, residue 5 (R) were W and residue 7 (K) were deleted")
    assert "not hemolytic" in text
    ins = C.Counterfactual("WGL", 1.0, C.edit_script("GL", "WGL"))
    assert "W were inserted before residue 1 (G)" in C.describe("GL", ins)
    assert "<s" not in C.highlight("GL", ins, as_html=True) and "#1e8449" in C.highlight("GL", ins, as_html=True)


def test_clear_errors_and_empty_answers(cnn):
    _, f = cnn
    seq = "GLLKRIKKLL"  # predicted non-hemolytic
    with pytest.raises(ValueError, match="already predicted not hemolytic"):
        C.search(f, seq, target=0)
    with pytest.raises(ValueError, match="invalid residue 'X' at position 3"):
        C.search(f, "GLXK")
    with pytest.raises(ValueError, match="allow no edit"):
        C.search(f, seq, operations=("sub", "del"), frozen=range(10))
    with pytest.raises(ValueError, match="impossible length constraints"):
        C.search(f, seq, min_length=12)
    with pytest.raises(ValueError, match="operations"):
        C.search(f, seq, operations=("swap",))
    with pytest.raises(ValueError, match="alphabet"):
        C.search(f, seq, alphabet="AXB")
    with pytest.raises(ValueError, match="target must be 0"):
        C.search(f, seq, target=2)
    res = C.search(f, seq, max_edits=1, operations=("del",), length=16)
    assert res.counterfactuals == [] and res.min_edits is None and "no peptide within 1 edit is" in res.message
    with pytest.raises(ValueError, match="at least one edit"):
        C.describe(seq, C.Counterfactual(seq, 1.0, ()))


def test_exact_flag_says_when_the_minimum_is_guaranteed():
    """A model whose logit is (count of W) - 2.5: from 'AAAA' three edits are needed (each edit
    adds at most one W). Level 1 is always enumerated in full, so the answer is guaranteed
    only if the beam kept every peptide one edit away (then level 2 is complete too)."""
    w = np.zeros(21, np.float32)
    w[S.AMINO_ACIDS.index("W") + 1] = 1.0

    def f(x):
        return jnp.einsum("bla,a->b", x, w) - 2.5

    n1 = len(C.neighbours("AAAA", max_length=8))  # the size of level 1
    narrow = C.search(f, "AAAA", max_edits=3, beam_width=1, length=8)
    wide = C.search(f, "AAAA", max_edits=3, beam_width=n1, length=8)
    full = C.search(f, "AAAA", max_edits=3, beam_width=None, length=8)
    assert narrow.min_edits == wide.min_edits == full.min_edits == 3  # here even the narrow beam finds it
    assert (narrow.exact, narrow.complete_levels) == (False, 1) and "beam-limited" in narrow.message
    assert (wide.exact, wide.complete_levels) == (True, 2)
    assert full.exact and full.complete_levels == 3
    # "none within 2 edits": guaranteed only by the exhaustive search
    none_narrow = C.search(f, "AAAA", max_edits=2, beam_width=1, length=8)
    none_full = C.search(f, "AAAA", max_edits=2, beam_width=None, length=8)
    assert none_narrow.min_edits is None and none_full.min_edits is None
    assert not none_narrow.exact and none_full.exact and none_full.complete_levels == 2
    # one or two edits are always exact, whatever the beam
    assert C.search(f, "AWWA", max_edits=2, beam_width=1, length=8).exact
    assert C.search(f, "AWAA", max_edits=3, beam_width=1, length=8).exact


def test_min_edits_is_the_true_edit_distance_under_beam_pruning():
    """Regression: a model positive only on 'EDA' whose logit elsewhere steers a beam of width
    1 from 'AAA' along AAA -> AA -> DA -> EDA (shorter is better, D first is better; lengths
    >= 2). The beam reaches EDA at search level 3, by a detour, but EDA is 2 edits from AAA:
    min_edits must be the edit distance of the returned peptide, not the level."""
    target = jnp.asarray(S.encode("EDA", length=8))
    d_first = S.AMINO_ACIDS.index("D") + 1

    def f(x):
        n = jnp.sum(1.0 - x[:, :, 0], axis=1)
        base = -5.0 - n + 0.5 * x[:, 0, d_first]
        return jnp.where(jnp.all(x == target, axis=(1, 2)), 1.0, base)

    res = C.search(f, "AAA", max_edits=3, beam_width=1, min_length=2, length=8)
    assert [c.sequence for c in res.counterfactuals] == ["EDA"]
    assert res.min_edits == _lev("AAA", "EDA") == 2
    assert all(c.distance == res.min_edits for c in res.counterfactuals)
    assert "1 peptides 2 edits away" in res.message and "detour" in res.message
    assert res.exact  # level 1 was complete and crossed nowhere, so 2 is the minimum
    full = C.search(f, "AAA", max_edits=3, beam_width=None, min_length=2, length=8)
    assert full.min_edits == 2 and [c.sequence for c in full.counterfactuals] == ["EDA"]


# ----------------------------------------------------------------------------- nearest training peptide


def test_nearest_edit_distance_is_the_brute_force_minimum():
    rng = np.random.default_rng(3)
    alphabet = "ACDK"  # a small alphabet: many near ties
    refs = ["".join(rng.choice(list(alphabet), rng.integers(1, 14))) for _ in range(120)]
    queries = ["".join(rng.choice(list(alphabet), rng.integers(1, 14))) for _ in range(40)] + [refs[5], "A", "K" * 30]
    got = C.nearest_edit_distance(queries, refs)
    assert got.tolist() == [min(_lev(q, r) for r in refs) for q in queries]
    assert got[40] == 0  # a reference itself


def test_nearest_edit_distance_rejects_bad_input():
    with pytest.raises(ValueError, match="references"):
        C.nearest_edit_distance(["ACD"], [])
    with pytest.raises(TypeError, match="queries"):
        C.nearest_edit_distance([""], ["ACD"])
    with pytest.raises(TypeError, match="references"):
        C.nearest_edit_distance(["ACD"], ["ACD", 3])


# ----------------------------------------------------------------------------- the shipped test-set study


def _shipped_study():
    from helpers import model as M

    return np.load(M.pretrained_dir() / "cf_study.npz")


def test_shipped_study_is_consistent():
    """Every shipped counterfactual is its recorded number of edits from its peptide, on the
    other side of the boundary by its recorded logit; the recorded distances to the training
    split are recomputed for a few."""
    from helpers import data as D
    from helpers import model as M

    d = _shipped_study()
    assert str(d["config_command"]) == "python -m helpers.cf_study" and int(d["config_max_edits"]) == 3
    found = d["min_edits"] > 0
    assert found.sum() > 0.8 * len(found)
    for s, c, k in zip(d["sequence"][found], d["cf_sequence"][found], d["min_edits"][found], strict=True):
        assert _lev(s, c) == k
    f = M.predict_fn(M.load_pretrained()[0])
    logits = C.predict_sequences(f, list(d["cf_sequence"][found]))
    assert np.allclose(logits, d["cf_logit"][found], atol=1e-4)
    assert np.all((logits > 0) == (d["target"][found] == 1))
    train = D.load_split("train").sequences
    for i in np.nonzero(found)[0][:3]:
        assert d["nearest_train_cf"][i] == min(_lev(d["cf_sequence"][i], r) for r in train)


def test_study_script_small_matches_the_shipped_study(tmp_path):
    """`--small` reruns the first 6 peptides of the same sample with a budget of one edit:
    where the shipped study needed one edit it finds the same counterfactual (level 1 is
    complete in both), elsewhere none; the distances to the training split agree."""
    from helpers import cf_study

    out = tmp_path / "small.npz"
    cf_study.main(["--small", "--out", str(out)])
    small, shipped = np.load(out), _shipped_study()
    k = len(small["sequence"])
    assert k == 6 and str(small["config_command"]).startswith("python -m helpers.cf_study --small")
    assert small["sequence"].tolist() == shipped["sequence"][:k].tolist()
    assert np.allclose(small["logit"], shipped["logit"][:k], atol=1e-5)
    one = shipped["min_edits"][:k] == 1
    assert np.all(small["min_edits"][one] == 1) and np.all(small["min_edits"][~one] == -1)
    assert small["cf_sequence"][one].tolist() == shipped["cf_sequence"][:k][one].tolist()
    assert np.array_equal(small["nearest_train_original"], shipped["nearest_train_original"][:k])
    assert np.array_equal(small["nearest_train_test"], shipped["nearest_train_test"][:k])


def test_retrained_seeds_match_their_records():
    """The retrained models chapter 10 asks (seeds 1-3): each shipped with the command that
    made it, and its recorded test AUROC recomputed from the shipped weights."""
    from helpers import data as D
    from helpers import metrics as MT
    from helpers import model as M

    test = D.load_split("test")
    for k in (1, 2, 3):
        params, info = M.load_pretrained(f"hemolysis_cnn_seed{k}")
        assert info["command"] == f"python -m helpers.training --seed {k} --name hemolysis_cnn_seed{k}"
        assert info["settings"]["seed"] == k
        logits = np.asarray(M.predict_fn(params)(jnp.asarray(test.x)))
        assert abs(MT.auroc(test.y, logits) - info["metrics"]["test"]["auroc"]) < 1e-4
