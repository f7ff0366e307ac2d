import jax
import numpy as np
import pytest
from scipy.stats import spearmanr

from helpers import perturbation as P
from helpers import sequences as S
from helpers import surrogate as SG

L = 24
SEQ = "KLWKLLKAGV"
KEY = jax.random.PRNGKey(0)


def _x(seq=SEQ):
    return S.encode(seq, length=L)


def test_lime_on_a_linear_model_recovers_signs_and_ranking(additive, additive_terms):
    _, f = additive
    x = _x()
    truth = additive_terms(x, P.fill_reference("padding", x))  # what deleting each residue costs
    res = SG.lime(f, x, KEY, n_samples=1000)
    assert (np.sign(res.coefficients) == np.sign(truth)).all()
    assert spearmanr(res.coefficients, truth).statistic == pytest.approx(1.0)
    assert res.r2 > 0.999  # the model is exactly linear in the switches
    np.testing.assert_allclose(res.coefficients, truth, rtol=0.05, atol=0.02)  # ridge shrinks a little
    assert res.model_calls == 1000 + 2


def test_lime_selects_the_largest_terms(additive, additive_terms):
    _, f = additive
    x = _x()
    truth = additive_terms(x, P.fill_reference("padding", x))
    res = SG.lime(f, x, KEY, n_samples=1000, n_features=3)
    assert len(res.selected) == 3 and (np.count_nonzero(res.coefficients) == 3)
    # The lasso path picks by weighted correlation, a noisy estimate of |term|: here the 2nd to
    # 5th largest |terms| lie within 0.36 of each other (2.85, 2.78, 2.60, 2.49), so among them
    # any may enter. What cannot change: the largest term (5.17) is chosen, and nothing outside
    # the terms within 0.4 of the third largest.
    order = np.argsort(-np.abs(truth))
    near = {int(i) for i in np.flatnonzero(np.abs(truth) >= np.abs(truth[order[2]]) - 0.4)}
    assert int(order[0]) in set(res.selected) and set(map(int, res.selected)) <= near


def test_sampling_and_kernel():
    z = SG.sample_masks(KEY, 8, 500)
    assert z.shape == (500, 8) and z[0].all()
    removed = (~z[1:]).sum(axis=1)
    assert removed.min() == 1 and removed.max() == 8  # 1 .. n residues removed, as lime's text sampler
    assert abs(np.bincount(removed)[1:].std() / np.bincount(removed)[1:].mean()) < 0.2  # ~uniform
    np.testing.assert_allclose(SG.kernel_weights([0.0, 0.25], 0.25), [1.0, np.exp(-0.5)])


def test_lime_is_deterministic_given_the_key(cnn):
    _, f = cnn
    x = S.encode("GLLKRIKKLL")
    a = SG.lime(f, x, KEY, n_samples=200, length=12)
    b = SG.lime(f, x, KEY, n_samples=200, length=12)
    c = SG.lime(f, x, jax.random.PRNGKey(1), n_samples=200, length=12)
    np.testing.assert_array_equal(a.coefficients, b.coefficients)
    assert not np.array_equal(a.coefficients, c.coefficients)
    assert 0.0 < a.r2 <= 1.0


def test_errors(additive):
    _, f = additive
    x = _x()
    with pytest.raises(ValueError, match=r"n_samples must be an integer >= 2 \(n \+ 1\) = 22"):
        SG.lime(f, x, KEY, n_samples=10)
    with pytest.raises(ValueError, match="kernel_width"):
        SG.lime(f, x, KEY, kernel_width=0.0)
    with pytest.raises(ValueError, match="n_features"):
        SG.lime(f, x, KEY, n_features=0)
    with pytest.raises(ValueError, match="at least 2 residues"):
        SG.lime(f, S.encode("K", length=L), KEY)
    with pytest.raises(ValueError, match="PRNG key"):
        SG.lime(f, x, 42)
