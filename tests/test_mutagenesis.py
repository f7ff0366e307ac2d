"""Saturation mutagenesis against closed forms and against the model called one variant at a
time; activation maximisation's contract."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import counterfactual, mutagenesis
from helpers import sequences as seqs

PEPTIDES = ["GIGKFLHSAKKFGKAFVGEIMNS", "KWKLFKKIEK", "FLPLIGRVLSGIL"]


def test_ism_of_an_additive_model_is_its_table(additive):
    w, f = additive  # [24, 21]
    maps = mutagenesis.saturation_mutagenesis(f, PEPTIDES, length=24, chunk=64)
    for s, m in zip(PEPTIDES, maps):
        idx = np.array([seqs.ALPHABET.index(a) for a in s])
        want = w[np.arange(len(s)), 1:] - w[np.arange(len(s)), idx][:, None]
        assert m.shape == (len(s), 20)
        np.testing.assert_allclose(m, want, atol=1e-4)


def test_padding_column_is_masking_in_place(additive):
    w, f = additive
    (m,) = mutagenesis.saturation_mutagenesis(f, PEPTIDES[:1], length=24, padding=True)
    idx = np.array([seqs.ALPHABET.index(a) for a in PEPTIDES[0]])
    np.testing.assert_allclose(m[:, 0], w[np.arange(len(idx)), 0] - w[np.arange(len(idx)), idx], atol=1e-4)
    np.testing.assert_allclose(m[:, 1:], mutagenesis.saturation_mutagenesis(f, PEPTIDES[:1], length=24)[0], atol=1e-5)


def test_ism_matches_chapter_10_scan_and_cut_length_keeps_logits(cnn):
    _, f = cnn
    maps = mutagenesis.saturation_mutagenesis(f, PEPTIDES, chunk=100)  # several chunks, the last one filled up
    for s, m in zip(PEPTIDES, maps):
        scan = counterfactual.substitution_scan(f, s)  # at the full length 190
        np.testing.assert_allclose(m, scan.logits - scan.original_logit, atol=2e-4)
    x_full = jnp.asarray(seqs.encode_batch(PEPTIDES))
    for s in PEPTIDES:
        n = mutagenesis.cut_length(len(s))
        got = float(f(jnp.asarray(seqs.encode(s, length=n))[None])[0])
        assert abs(got - float(f(jnp.asarray(seqs.encode(s))[None])[0])) < 1e-5
    assert x_full.shape[1] == seqs.DEFAULT_LENGTH


def test_importance_and_aggregation():
    effects = np.zeros((3, 20))
    effects[1] = -1.0
    effects[1, 0] = 0.0  # the residue's own column
    imp = mutagenesis.mutational_importance(effects)
    np.testing.assert_allclose(imp, [0.0, 1.0, 0.0])
    agg = mutagenesis.by_amino_acid([np.array([1.0, 2.0]), np.array([3.0])], ["AK", "A"])
    a, k = seqs.AMINO_ACIDS.index("A"), seqs.AMINO_ACIDS.index("K")
    assert agg.mean[a] == 2.0 and agg.count[a] == 2 and agg.mean[k] == 2.0
    assert np.isnan(agg.se[k])  # one peptide holds K: no clustered s.e.


def test_bad_input_is_refused(additive):
    _, f = additive
    with pytest.raises(TypeError, match="sequences"):
        mutagenesis.saturation_mutagenesis(f, "KWK")
    with pytest.raises(ValueError, match="sequences\\[0\\]"):
        mutagenesis.saturation_mutagenesis(f, ["KWZ"])
    with pytest.raises(ValueError, match="length"):
        mutagenesis.saturation_mutagenesis(f, PEPTIDES, length=5)
    with pytest.raises(ValueError, match="effects"):
        mutagenesis.mutational_importance(np.zeros((3, 21)))
    with pytest.raises(ValueError, match="composition"):
        mutagenesis.design(f, n=5, key=jax.random.PRNGKey(0), composition_weight=1.0)


def test_design_climbs_a_linear_model():
    # f = sum of per-residue values v[a]: the best peptide is the best amino acid everywhere
    v = jnp.arange(21, dtype=jnp.float32) / 10.0  # V (channel 20) is best
    f = jax.jit(lambda xb: jnp.einsum("bla,a->b", xb, v))
    d = mutagenesis.design(f, n=6, key=jax.random.PRNGKey(1), starts=2, steps=150)
    assert d.sequences == ["VVVVVV", "VVVVVV"]
    np.testing.assert_allclose(d.logit, 12.0, atol=1e-4)
    assert (d.soft_logit <= d.logit + 1e-4).all()
    # start j depends on its own key only: fewer starts reproduce the first ones
    one = mutagenesis.design(f, n=6, key=jax.random.PRNGKey(1), starts=1, steps=150)
    np.testing.assert_allclose(one.probabilities[0], d.probabilities[0], atol=1e-6)


def test_substitution_regression_recovers_the_slopes_of_a_linear_table():
    # per-position table W[l, a] = 0.3 charge(a) - 0.2 hydropathy(a) + position noise: every
    # substitution's effect is exactly 0.3 d(charge) - 0.2 d(hydropathy), so the fit is exact
    charge = np.array([1.0 if a in "KR" else -1.0 if a in "DE" else 0.0 for a in seqs.AMINO_ACIDS])
    kd = np.array([seqs.KYTE_DOOLITTLE[a] for a in seqs.AMINO_ACIDS])
    rng = np.random.default_rng(0)
    table = np.zeros((24, 21))
    table[:, 1:] = 0.3 * charge - 0.2 * kd
    table[:, 0] = rng.normal(size=24)
    tab = jnp.asarray(table, dtype=jnp.float32)
    f = jax.jit(lambda xb: jnp.einsum("bla,la->b", xb, tab))
    maps = mutagenesis.saturation_mutagenesis(f, PEPTIDES, length=24)
    fit = mutagenesis.substitution_regression(maps, PEPTIDES, np.c_[charge, kd], n_resamples=20)
    np.testing.assert_allclose(fit.coef, [0.0, 0.3, -0.2], atol=1e-5)
    np.testing.assert_allclose(fit.boot, np.tile([0.0, 0.3, -0.2], (20, 1)), atol=1e-5)  # no noise: every resample agrees
    assert fit.n == 19 * sum(len(s) for s in PEPTIDES)
    # against plain least squares on the stacked substitutions (a model with noise)
    noisy = [m + rng.normal(size=m.shape) for m in maps]
    rows, ys = [], []
    for s, m in zip(PEPTIDES, noisy):
        for i, a in enumerate(s):
            k = seqs.AMINO_ACIDS.index(a)
            for b in range(20):
                if b != k:
                    rows.append([1.0, charge[b] - charge[k], kd[b] - kd[k]])
                    ys.append(m[i, b])
    want = np.linalg.lstsq(np.array(rows), np.array(ys), rcond=None)[0]
    np.testing.assert_allclose(mutagenesis.substitution_regression(noisy, PEPTIDES, np.c_[charge, kd], n_resamples=2).coef, want, atol=1e-8)
    with pytest.raises(ValueError, match="features"):
        mutagenesis.substitution_regression(maps, PEPTIDES, np.ones((21, 2)))
    # a constant column, or one that is a combination of others, leaves the slopes unidentified
    with pytest.raises(ValueError, match="not identified"):
        mutagenesis.substitution_regression(maps, PEPTIDES, np.c_[charge, np.full(20, 3.0)], n_resamples=2)
    with pytest.raises(ValueError, match="rank 2 < 3"):
        mutagenesis.substitution_regression(maps, PEPTIDES, np.c_[charge, 2.0 * charge], n_resamples=2)
    with pytest.raises(ValueError, match="effects\\[1\\]"):
        mutagenesis.substitution_regression([maps[0], maps[0], maps[2]], PEPTIDES, np.c_[charge])
