import itertools
import math

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
    masks, weights = SH.kernel_coalitions(6, 2**6 - 2, KEY)
    assert len(masks) == 62 and len({m.tobytes() for m in masks}) == 62  # all, once each
    np.testing.assert_allclose(weights.sum(), 1.0)
    # each coalition's weight is the Shapley kernel (n-1) / (C(n,k) k (n-k)), normalised
    k = masks.sum(axis=1)
    kernel = 5 / (np.array([math.comb(6, int(s)) for s in k]) * k * (6 - k))
    np.testing.assert_allclose(weights, kernel / kernel.sum())
    # a budget of 30: sizes 1 and 5 (12 coalitions) carry 53 % of the kernel weight, and
    # 30 x 53 % >= 12, so they are enumerated; the other 18 are sampled in complement pairs
    masks, weights = SH.kernel_coalitions(6, 30, KEY)
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


def test_exact_12_players_64_background_costs_what_it_says(cnn, background_peptides):
    # cost in model calls, not seconds: wall-clock time is printed in chapter 7, never asserted
    _, f = cnn
    x = S.encode("AGYNLYRAIKKK")
    res = SH.shapley_exact(f, x, background=background_peptides, length=14)
    assert res.model_calls == 2**12 * 64 and res.coalitions == 2**12


def test_banzhaf_from_values_is_the_mean_marginal_over_all_subsets():
    rng = np.random.default_rng(3)
    n = 5
    v = rng.normal(size=2**n)
    brute = np.zeros(n)
    for i in range(n):
        others = [j for j in range(n) if j != i]
        for k in range(n):
            for subset in itertools.combinations(others, k):
                s = sum(1 << j for j in subset)
                brute[i] += v[s | (1 << i)] - v[s]
    brute /= 2 ** (n - 1)
    np.testing.assert_allclose(SH.banzhaf_from_values(v, n), brute, atol=1e-12)
    with pytest.raises(ValueError, match="expected 32 coalition values"):
        SH.banzhaf_from_values(v[:-1], n)


def test_banzhaf_and_shapley_differ_in_closed_form_on_a_pure_interaction():
    # v(S) = 1 if players 0, 1, 2 are all in S (x1 x2 x3), for n = 3 and n = 4 (a dummy)
    for n in (3, 4):
        bits = SH.all_coalitions(n)
        v = bits[:, :3].all(axis=1).astype(float)
        shap = SH.shapley_from_values(v, n)
        banz = SH.banzhaf_from_values(v, n)
        # Shapley: the unit is shared equally (1/3 each); Banzhaf: i is pivotal only when the
        # other two are present, probability 1/4; a dummy player gets 0 from both
        np.testing.assert_allclose(shap[:3], 1 / 3, atol=1e-12)
        np.testing.assert_allclose(banz[:3], 1 / 4, atol=1e-12)
        np.testing.assert_allclose(shap[3:], 0, atol=1e-12)
        np.testing.assert_allclose(banz[3:], 0, atol=1e-12)
        assert abs(shap.sum() - 1) < 1e-12 and abs(banz.sum() - 0.75) < 1e-12


def test_banzhaf_equals_shapley_on_an_additive_model(additive, additive_terms, additive_bg):
    # for an additive game every marginal contribution is the player's own term: both agree
    _, f = additive
    x = _x()
    res = SH.banzhaf_exact(f, x, background=additive_bg)
    np.testing.assert_allclose(res.values, additive_terms(x, additive_bg), atol=1e-5)
    assert abs(res.gap) < 1e-5 and res.coalitions == 2**10


def test_banzhaf_exact_on_the_cnn_uses_the_same_game(cnn_game, background_peptides):
    f, x, exact = cnn_game
    banz = SH.banzhaf_exact(f, x, background=background_peptides, length=12)
    assert banz.f_x == exact.f_x and banz.f_empty == exact.f_empty
    assert np.abs(banz.values - exact.values).max() > 1e-3  # the CNN is not additive
    np.testing.assert_allclose(banz.gap, banz.values.sum() - (exact.f_x - exact.f_empty))


def test_solve_kernel_is_the_constrained_least_squares_solution():
    # against the KKT system of min sum w (v - e - z.phi)^2 s.t. sum(phi) = full - e
    rng = np.random.default_rng(0)
    n, c = 5, 40
    z = rng.random((c, n)) < 0.5
    w = rng.random(c)
    v = rng.normal(size=c)
    empty, full = 0.3, 1.7
    zf = z.astype(float)
    kkt = np.block([[2 * zf.T @ (w[:, None] * zf), np.ones((n, 1))], [np.ones((1, n)), np.zeros((1, 1))]])
    rhs = np.concatenate([2 * zf.T @ (w * (v - empty)), [full - empty]])
    phi = np.linalg.solve(kkt, rhs)[:n]
    np.testing.assert_allclose(SH.solve_kernel(z, w, v, empty, full), phi, atol=1e-9)
    with pytest.raises(ValueError, match="must agree"):
        SH.solve_kernel(z, w[:-1], v, empty, full)
