"""The Explorer page's shipped file (`python -m helpers.explorer --write`): its shape, its
internal consistency (the deletion curves' end points, efficiency of Shapley values), checks
against what cannot lie (completeness of IG from the all-padding baseline, up to its
quadrature error; occlusion's first deletion step equals its largest score), the aggregates
recomputed from it, and a sample of peptides recomputed with every method (which shows that
the code reproduces the file, not that the file is right)."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import data, explorer, shapley

CONTENT = explorer.load()
PEPTIDES = CONTENT["peptides"]
KEYS = [k for k, _ in explorer.METHODS]


def _lengths():
    return np.array([len(p["sequence"]) for p in PEPTIDES])


def test_file_holds_every_test_peptide_and_method_with_its_record():
    test = data.load_split("test")
    assert len(PEPTIDES) == len(test.sequences) == 561
    assert [p["sequence"] for p in PEPTIDES] == list(test.sequences)
    assert [p["label"] for p in PEPTIDES] == [int(y) for y in test.y]
    assert [m["key"] for m in CONTENT["methods"]] == KEYS
    assert CONTENT["command"].startswith("python -m helpers.explorer --write")
    assert CONTENT["settings"] == dict(explorer.SETTINGS, seed=explorer.SEED)
    for p in PEPTIDES:
        n = len(p["sequence"])
        assert p["prediction"] == int(p["logit"] > 0)
        assert p["shapley"] == ("exact" if n <= shapley.MAX_EXACT_PLAYERS else "permutation")
        for k in KEYS:
            assert len(p["attributions"][k]) == n and len(p["deletion"][k]) == n + 1
            assert p["area"][k] is None or np.isfinite(p["area"][k])
        for pos, old, new, logit in p["flips"]:
            assert 1 <= pos <= n and p["sequence"][pos - 1] == old != new
            assert (logit > 0) != (p["logit"] > 0)
    assert sum(p["shapley"] == "exact" for p in PEPTIDES) == int((_lengths() <= shapley.MAX_EXACT_PLAYERS).sum())


def test_stored_numbers_are_consistent_with_each_other():
    """What cannot lie: every deletion curve starts at the peptide's logit and ends at the
    all-padding input's; Shapley values (exact, or permutation sampling, which is efficient
    for every order) sum to their difference."""
    empty = {round(p["deletion"]["saliency"][-1], 4) for p in PEPTIDES}
    assert len(empty) == 1  # one all-padding input, one logit
    for p in PEPTIDES:
        for k in KEYS:
            assert p["deletion"][k][0] == pytest.approx(p["logit"], abs=1e-4)
            assert p["deletion"][k][-1] == pytest.approx(p["deletion"]["saliency"][-1], abs=1e-4)
        gap = p["logit"] - p["deletion"]["shapley"][-1]
        assert sum(p["attributions"]["shapley"]) == pytest.approx(gap, abs=2e-3)


def test_ig_from_padding_is_complete_and_occlusion_starts_the_occlusion_curve():
    """IG from the all-padding baseline sums to the logit minus the all-padding input's (the
    baseline differs from the peptide only on its residues; 64 trapezoid steps leave a
    quadrature error, measured: max 0.092, median 0.0024 over the 561 peptides). Occlusion's
    score is the logit minus the logit with that residue padded, so the occlusion deletion
    curve's second point (its top residue masked) is the logit minus the largest score."""
    empty = PEPTIDES[0]["deletion"]["saliency"][-1]
    gap = np.array([sum(p["attributions"]["ig_padding"]) - (p["logit"] - empty) for p in PEPTIDES])
    assert np.abs(gap).max() < 0.1 and np.median(np.abs(gap)) < 0.01
    for p in PEPTIDES:
        top = p["logit"] - max(p["attributions"]["occlusion"])
        assert p["deletion"]["occlusion"][1] == pytest.approx(top, abs=3e-4)


def test_aggregates_follow_from_the_stored_peptides():
    assert explorer.agreement(PEPTIDES) == CONTENT["agreement"]
    assert explorer.by_amino_acid(PEPTIDES) == CONTENT["by_amino_acid"]
    mean = np.array(CONTENT["agreement"]["mean"])
    assert mean.shape == (len(KEYS), len(KEYS))
    np.testing.assert_allclose(np.diag(mean), 1.0)
    np.testing.assert_allclose(mean, mean.T, atol=1e-12)
    assert np.array(CONTENT["by_amino_acid"]["mean"]).shape == (len(KEYS), 20)
    assert sum(CONTENT["by_amino_acid"]["count"]) == _lengths().sum()


def _sample() -> list[int]:
    """Five peptides covering every code path: exact Shapley; sampled Shapley at each game
    length (32, 64, 128); one with flipping substitutions."""
    n = _lengths()
    flips = [i for i, p in enumerate(PEPTIDES) if p["flips"] and 15 <= n[i] <= 30]
    picks = [int(np.flatnonzero(n <= shapley.MAX_EXACT_PLAYERS)[0]),
             int(np.flatnonzero((n > shapley.MAX_EXACT_PLAYERS) & (n <= 30))[0]),
             int(np.flatnonzero((n > 30) & (n <= 62))[0]), int(np.flatnonzero(n > 62)[0]), flips[0]]
    assert len(set(picks)) == 5
    return picks


@pytest.fixture(scope="module")
def recomputed():
    params, _ = explorer.model_lib.load_pretrained()
    test = data.load_split("test")
    ex = explorer.Explainer(params, seed=CONTENT["settings"]["seed"])
    return {i: ex.peptide(test.x[i], test.sequences[i], test.y[i], i) for i in _sample()}


def test_a_sample_recomputed_with_every_method_matches_the_file(recomputed):
    tol = {"rtol": explorer.RTOL, "atol": explorer.ATOL}
    for i, again in recomputed.items():
        stored = PEPTIDES[i]
        assert (again["sequence"], again["prediction"], again["shapley"]) == (
            stored["sequence"], stored["prediction"], stored["shapley"])
        np.testing.assert_allclose(again["logit"], stored["logit"], **tol)
        for k in KEYS:
            np.testing.assert_allclose(again["attributions"][k], stored["attributions"][k], err_msg=f"{i} {k}", **tol)
            np.testing.assert_allclose(again["deletion"][k], stored["deletion"][k], err_msg=f"{i} {k}", **tol)
            if stored["area"][k] is not None:
                np.testing.assert_allclose(again["area"][k], stored["area"][k], **tol)
        a, b = sorted(again["flips"]), sorted(stored["flips"])
        assert [f[:3] for f in a] == [f[:3] for f in b]
        np.testing.assert_allclose([f[3] for f in a], [f[3] for f in b], **tol)


def test_page_tables_and_embedding():
    tables = explorer.tables(CONTENT)
    assert len(tables["peptides"]) == len(tables["residues"]) == len(tables["curves"]) == 561
    assert len(tables["flips"]) == sum(len(p["flips"]) for p in PEPTIDES)
    empty = PEPTIDES[0]["deletion"]["saliency"][-1]
    assert [r["comparable"] for r in tables["peptides"]] == [
        p["logit"] - empty > explorer.AREA_MARGIN for p in PEPTIDES]
    r = tables["residues"][0]
    assert len(r["pos"]) == len(r["aa"]) == len(r["lime"]) == len(PEPTIDES[0]["sequence"])
    html = explorer.embed_html({"datasets": {"x": [{"s": "</script>"}]}}, element_id="ex-1", controls=True)
    assert html.count("</script>") == 1 and "vegaEmbed(\"#ex-1-chart\"" in html and 'id="ex-1-search"' in html
    with pytest.raises(TypeError, match="spec"):
        explorer.embed_html("{}", element_id="x")
    with pytest.raises(ValueError, match="element_id"):
        explorer.embed_html({}, element_id="a b")
    with pytest.raises(TypeError, match="content"):
        explorer.tables([])
    with pytest.raises(TypeError, match="seed"):
        explorer.Explainer({}, seed=0.5)
