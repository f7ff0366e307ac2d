import itertools
import math
import time

import jax
import numpy as np
import pytest

from helpers import perturbation as P
from helpers import sequences as S
from helpers import shapley as SH

L = 24
SEQ = "KLWKLLKAGV"
KEY = jax.random.PRNGKey(0)
# the sample counts chapter 7 uses
CHAPTER_PERMUTATIONS = 64
CHAPTER_KERNEL_SAMPLES = 256


def _x(seq=SEQ, length=L):
    return S.encode(seq, length=length)


def test_shapley_from_values_matches_the_permutation_definition():
    rng = np.random.default_rng(0)
    n = 4
    v = rng.normal(size=2**n)
    v[0] = 0.0
    brute = np.zeros(n)
    for order in itertools.permutations(range(n)):
        s = 0
        for i in order:
            brute[i] += v[s | (1 << i)] - v[s]
            s |= 1 << i
    brute /= math.factorial(n)
    np.testing.assert_allclose(SH.shapley_from_values(v, n), brute, atol=1e-12)
    assert SH.shapley_weights(3).tolist() == pytest.approx([1 / 3, 1 / 6, 1 / 3])
    assert SH.all_coalitions(2).tolist() == [[False, False], [True, False], [False, True], [True, True]]


@pytest.fixture(scope="module")
def additive_bg(additive, background_peptides):
    return background_peptides[:16, :L]


def test_exact_shapley_of_an_additive_model_equals_each_term(additive, additive_terms, additive_bg):
    _, f = additive
    x = _x()
    res = SH.shapley_exact(f, x, background=additive_bg)
    np.testing.assert_allclose(res.values, additive_terms(x, additive_bg), atol=1e-5)
    assert abs(res.gap) < 1e-5
    assert res.stderr is None and res.coalitions == 2**10 and res.model_calls == 2**10 * 16
    base = SH.shapley_exact(f, x, baseline="padding")  # the baseline game
    np.testing.assert_allclose(base.values, additive_terms(x, P.fill_reference("padding", x)), atol=1e-5)


def test_sampled_estimators_on_an_additive_model_are_within_their_error(additive, additive_terms, additive_bg):
    _, f = additive
    x = _x()
    truth = additive_terms(x, additive_bg)
    perm = SH.shapley_permutation(f, x, KEY, n_permutations=8, background=additive_bg)
    assert (np.abs(perm.values - truth) <= 3 * perm.stderr + 1e-5).all()
    kern = SH.kernel_shap(f, x, KEY, n_samples=60, background=additive_bg)  # any full-rank design is exact
    np.testing.assert_allclose(kern.values, truth, atol=1e-4)
    assert abs(perm.gap) < 1e-5 and abs(kern.gap) < 1e-5


@pytest.fixture(scope="module")
def cnn_game(cnn, background_peptides):
    """A real 10-residue peptide of the test split, its exact Shapley values on the CNN."""
    _, f = cnn
    seq = "GLLKRIKKLL"  # a 10-residue peptide of the DBAASP test split
    x = S.encode(seq)
    exact = SH.shapley_exact(f, x, background=background_peptides, length=12)
    return f, x, exact


def test_exact_shapley_on_the_cnn_is_efficient(cnn_game):
    _, _, exact = cnn_game
    assert abs(exact.gap) < 1e-5
    assert abs(exact.f_x - exact.f_empty) > 0.1  # a non-trivial game


def test_sampled_estimators_converge_to_exact_on_the_cnn(cnn_game, background_peptides):
    f, x, exact = cnn_game
    perm = SH.shapley_permutation(f, x, KEY, n_permutations=CHAPTER_PERMUTATIONS, background=background_peptides, length=12)
    kern = SH.kernel_shap(f, x, KEY, n_samples=CHAPTER_KERNEL_SAMPLES, background=background_peptides, length=12)
    assert np.abs(perm.values - exact.values).max() < 0.05
    assert np.abs(kern.values - exact.values).max() < 0.05
    # the permutation estimator's standard errors are honest: at most 1 of 10 players beyond 2.5 SE
    z = np.abs(perm.values - exact.values) / perm.stderr
    assert (z > 2.5).sum() <= 1
    # KernelSHAP with a budget of all 2^n - 2 coalitions enumerates them: exact
    full = SH.kernel_shap(f, x, KEY, n_samples=2**10 - 2, background=background_peptides, length=12)
    np.testing.assert_allclose(full.values, exact.values, atol=1e-5)
    assert full.coalitions == 2**10


def test_estimators_are_deterministic_given_the_key(cnn_game, background_peptides):
    f, x, _ = cnn_game
    a = SH.shapley_permutation(f, x, KEY, n_permutations=8, background=background_peptides[:8], length=12)
    b = SH.shapley_permutation(f, x, KEY, n_permutations=8, background=background_peptides[:8], length=12)
    c = SH.shapley_permutation(f, x, jax.random.PRNGKey(1), n_permutations=8, background=background_peptides[:8], length=12)
    np.testing.assert_array_equal(a.values, b.values)
    assert not np.array_equal(a.values, c.values)


def test_kernel_coalitions_follow_shap():
    masks, weights = SH._kernel_coalitions(6, 2**6 - 2, KEY)
    assert len(masks) == 62 and len({m.tobytes() for m in masks}) == 62  # all, once each
    np.testing.assert_allclose(weights.sum(), 1.0)
    # each coalition's weight is the Shapley kernel (n-1) / (C(n,k) k (n-k)), normalised
    k = masks.sum(axis=1)
    kernel = 5 / (np.array([math.comb(6, int(s)) for s in k]) * k * (6 - k))
    np.testing.assert_allclose(weights, kernel / kernel.sum())
    # a budget of 30: sizes 1 and 5 (12 coalitions) carry 53 % of the kernel weight, and
    # 30 x 53 % >= 12, so they are enumerated; the other 18 are sampled in complement pairs
    masks, weights = SH._kernel_coalitions(6, 30, KEY)
    assert len(masks) == 30 and (masks[:12].sum(axis=1) % 4 == 1).all()
    assert (masks[12::2] == ~masks[13::2]).all()
    np.testing.assert_allclose(weights.sum(), 1.0)


def test_errors(cnn_game, background_peptides):
    f, _, _ = cnn_game
    long = S.encode("GIGAVLKVLTTGLPALIS")  # 18 residues
    with pytest.raises(ValueError, match="Use shapley_permutation or kernel_shap"):
        SH.shapley_exact(f, long, background=background_peptides)
    x = S.encode("GLLKRIKKLL")
    with pytest.raises(ValueError, match="no background"):
        SH.shapley_exact(f, x)
    with pytest.raises(ValueError, match="even integer >= 4"):
        SH.shapley_permutation(f, x, KEY, n_permutations=5, background=background_peptides)
    with pytest.raises(ValueError, match="n_samples must be an integer of at least n \\+ 1 = 11"):
        SH.kernel_shap(f, x, KEY, n_samples=5, background=background_peptides)
    with pytest.raises(ValueError, match="PRNG key"):
        SH.kernel_shap(f, x, 0, background=background_peptides)


def test_exact_12_players_64_background_under_2_seconds(cnn, background_peptides):
    _, f = cnn
    x = S.encode("AGYNLYRAIKKK")
    SH.shapley_exact(f, x, background=background_peptides, length=14)  # compile
    t0 = time.perf_counter()
    res = SH.shapley_exact(f, x, background=background_peptides, length=14)
    seconds = time.perf_counter() - t0
    assert res.model_calls == 2**12 * 64
    assert seconds < 2.0, f"exact Shapley (12 players, 64 background) took {seconds:.2f} s"
