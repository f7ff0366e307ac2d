import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import attribution as A
from helpers import sequences as S

MELITTIN = "GIGAVLKVLTTGLPALISWIKRKRQQ"
L = 24  # short inputs keep the analytic tests fast


@pytest.fixture(scope="module")
def linear(additive):
    """f(x) = sum(W * x) over L positions (conftest): every method has a closed form."""
    return additive


def _peptide(seq="KLWKLLKAGV", length=L):
    return jnp.asarray(S.encode(seq, length=length))


def test_num_residues():
    assert A.num_residues(_peptide()) == 10
    with pytest.raises(ValueError, match="no residue"):
        A.num_residues(np.eye(21)[np.zeros(L, int)])
    bad = np.asarray(_peptide()).copy()
    bad[2] = np.eye(21)[0]  # a hole before the end
    with pytest.raises(ValueError, match="before the padding"):
        A.num_residues(bad)


# --------------------------------------------------------------------------- linear model


@pytest.mark.parametrize("rule", A.RULES)
@pytest.mark.parametrize("steps", [1, 3, 50])
def test_ig_is_exact_on_a_linear_model(linear, rule, steps):
    w, f = linear
    x = _peptide()
    b = A.make_baseline("uniform", x)
    res = A.integrated_gradients(f, x, b, steps=steps, rule=rule)
    np.testing.assert_allclose(res.attributions, w * (x - b), rtol=1e-5, atol=1e-6)
    assert abs(res.gap) < 1e-4


def test_gradient_x_input_and_saliency_on_a_linear_model(linear):
    w, f = linear
    x = _peptide()
    np.testing.assert_allclose(A.saliency(f, x), w, rtol=1e-6)
    np.testing.assert_allclose(A.gradient_x_input(f, x), w * x, rtol=1e-6)
    ig = A.integrated_gradients(f, x, steps=5).attributions  # zero baseline
    np.testing.assert_allclose(A.gradient_x_input(f, x), ig, rtol=1e-5, atol=1e-6)


def test_ig_completeness_on_the_cnn_and_trapezoid_beats_left(cnn):
    _, f = cnn
    x = jnp.asarray(S.encode(MELITTIN))
    res = A.integrated_gradients(f, x, steps=256, rule="trapezoid")
    delta = abs(res.f_x - res.f_baseline)
    assert res.f_baseline == 0.0 and delta > 0.1
    assert abs(res.gap) < 1e-3 * delta
    for steps in (8, 32):
        trap = A.integrated_gradients(f, x, steps=steps, rule="trapezoid").gap
        left = A.integrated_gradients(f, x, steps=steps, rule="left").gap
        assert abs(trap) < abs(left)


def test_ig_batch_size_does_not_change_the_answer(cnn):
    _, f = cnn
    x = jnp.asarray(S.encode(MELITTIN))
    a = A.integrated_gradients(f, x, steps=40, batch_size=7).attributions
    b = A.integrated_gradients(f, x, steps=40, batch_size=256).attributions
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_zero_and_padding_baselines_are_roots_of_the_cnn(cnn):
    _, f = cnn
    x = jnp.asarray(S.encode(MELITTIN))
    for kind in ("zero", "padding"):
        assert float(f(A.make_baseline(kind, x)[None])[0]) == 0.0


def test_baselines_shapes_and_rows(cnn):
    x = jnp.asarray(S.encode("KLW", length=6))
    uni = A.make_baseline("uniform", x)
    np.testing.assert_allclose(uni.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(uni[:3, 1:], 1 / 20)
    np.testing.assert_array_equal(uni[3:], x[3:])
    train_x = S.encode_batch(["KLW", "AAAAA"], length=6)
    np.testing.assert_allclose(A.make_baseline("mean", x, train_x=train_x), train_x.mean(0))
    with pytest.raises(ValueError, match="needs train_x"):
        A.make_baseline("mean", x)
    with pytest.raises(ValueError, match="unknown baseline"):
        A.make_baseline("blur", x)


# --------------------------------------------------------------------------- SmoothGrad


def test_smoothgrad_with_zero_noise_is_the_gradient(cnn):
    _, f = cnn
    x = jnp.asarray(S.encode(MELITTIN))
    sg = A.smoothgrad(f, x, jax.random.PRNGKey(0), n=4, sigma=0.0)
    # float32: a batch of 4 sums in another order than a batch of 1 (entries reach ~30)
    np.testing.assert_allclose(sg, A.saliency(f, x), rtol=1e-4, atol=1e-5)
    sgx = A.smoothgrad(f, x, jax.random.PRNGKey(0), n=2, sigma=0.0, method="gradient_x_input")
    np.testing.assert_allclose(sgx, A.gradient_x_input(f, x), rtol=1e-5, atol=1e-6)


def test_smoothgrad_mean_is_stable_across_keys(cnn):
    _, f = cnn
    x = jnp.asarray(S.encode(MELITTIN))
    a = A.per_residue(A.smoothgrad(f, x, jax.random.PRNGKey(1), n=400, sigma=0.15), x)
    b = A.per_residue(A.smoothgrad(f, x, jax.random.PRNGKey(2), n=400, sigma=0.15), x)
    assert np.corrcoef(a, b)[0, 1] > 0.95
    small = A.per_residue(A.smoothgrad(f, x, jax.random.PRNGKey(1), n=4, sigma=0.15), x)
    assert np.abs(a - b).mean() < np.abs(a - small).mean()  # more samples, less spread


def test_smoothgrad_leaves_padding_alone_by_default(linear):
    w, f = linear  # linear: the gradient is w everywhere, so gradient x input shows the input
    x = _peptide("KLW")
    sgx = A.smoothgrad(f, x, jax.random.PRNGKey(0), n=8, method="gradient_x_input")
    np.testing.assert_allclose(sgx[3:], (w * x)[3:], rtol=1e-6)  # padding rows unchanged
    assert not np.allclose(sgx[:3], (w * x)[:3])
    sgp = A.smoothgrad(f, x, jax.random.PRNGKey(0), n=8, method="gradient_x_input", perturb_padding=True)
    assert not np.allclose(sgp[3:], (w * x)[3:])


def test_simplex_projection():
    x = jnp.array([[[0.5, -0.2, 0.7] + [0.0] * 18, [-1.0] * 21]])
    p = A.project_to_simplex_rows(x)
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-6)
    assert (p >= 0).all()
    np.testing.assert_allclose(p[0, 0, :3], [0.5 / 1.2, 0.0, 0.7 / 1.2], rtol=1e-6)


# --------------------------------------------------------------------------- DeepLIFT


def test_per_residue_reducers():
    x = jnp.asarray(S.encode("KLW", length=5))
    attr = jnp.arange(5 * 21, dtype=jnp.float32).reshape(5, 21)
    own = A.per_residue(attr, x)
    assert own.shape == (3,)
    assert list(own) == [attr[0, 12], attr[1, 11], attr[2, 18]]  # K, L, W channels
    np.testing.assert_allclose(A.per_residue(attr, x, how="sum"), attr[:3].sum(-1))
    with pytest.raises(ValueError, match="own"):
        A.per_residue(attr, x, how="max")
    with pytest.raises(ValueError, match="must both be"):
        A.per_residue(attr[:4], x)


def test_invalid_input_is_named(linear):
    _, f = linear
    x = _peptide()
    with pytest.raises(ValueError, match=r"x must have shape \[L, 21\]"):
        A.saliency(f, x[None])
    with pytest.raises(ValueError, match="NaN"):
        A.gradient_x_input(f, x.at[0, 0].set(jnp.nan))
    with pytest.raises(ValueError, match="baseline has shape"):
        A.integrated_gradients(f, x, jnp.zeros((L + 1, 21)))
    with pytest.raises(ValueError, match="baseline contains NaN"):
        A.integrated_gradients(f, x, jnp.full((L, 21), jnp.nan))
    with pytest.raises(ValueError, match="steps must be"):
        A.integrated_gradients(f, x, steps=0)
    with pytest.raises(ValueError, match="unknown rule"):
        A.integrated_gradients(f, x, rule="simpson")
    with pytest.raises(ValueError, match="sigma"):
        A.smoothgrad(f, x, jax.random.PRNGKey(0), sigma=-1.0)
    with pytest.raises(ValueError, match="n must be"):
        A.smoothgrad(f, x, jax.random.PRNGKey(0), n=0)
    with pytest.raises(ValueError, match="batch_size"):
        A.integrated_gradients(f, x, batch_size=0)


def test_path_rules_weights_sum_to_one():
    for rule in A.RULES:
        alphas, weights = A.path_rule(10, rule)
        assert weights.sum() == pytest.approx(1.0)
        assert 0 <= alphas.min() and alphas.max() <= 1
    assert len(A.path_rule(10, "trapezoid")[0]) == 11


def test_public_gradients_match_saliency_and_reject_bad_shapes(linear):
    w, f = linear
    xs = jnp.stack([_peptide("KLW"), _peptide("AAAA")])
    g = A.gradients(f, xs, batch_size=1)
    np.testing.assert_allclose(g[1], A.saliency(f, xs[1]), rtol=1e-6)
    with pytest.raises(ValueError, match=r"\[B, L, 21\]"):
        A.gradients(f, xs[0])
    with pytest.raises(ValueError, match="NaN"):
        A.gradients(f, xs.at[0, 0, 0].set(jnp.nan))


def test_residue_mask_marks_residues_only():
    x = S.encode("KLW", length=6)
    np.testing.assert_array_equal(A.residue_mask(x)[:, 0], [1, 1, 1, 0, 0, 0])
    with pytest.raises(ValueError, match=r"\[L, 21\]"):
        A.residue_mask(x[None])


# --------------------------------------------------------------------------- DeepSHAP, EG


def test_expected_gradients_on_a_linear_model_and_one_reference(linear):
    w, f = linear
    x = _peptide()
    r = A.make_baseline("uniform", x)
    eg = A.expected_gradients(f, x, r[None], jax.random.PRNGKey(0), samples=16)
    np.testing.assert_allclose(eg.attributions, w * (x - r), rtol=1e-5, atol=1e-5)
    assert abs(eg.gap) < 1e-4 and eg.sum_se < 1e-4
    with pytest.raises(ValueError, match="samples must be"):
        A.expected_gradients(f, x, r[None], jax.random.PRNGKey(0), samples=1)
    with pytest.raises(ValueError, match="references must have shape"):
        A.expected_gradients(f, x, r, jax.random.PRNGKey(0))


def test_expected_gradients_is_unbiased_for_ig_and_complete_in_expectation(cnn, background_peptides):
    _, f = cnn
    x = jnp.asarray(S.encode(MELITTIN))
    ref = background_peptides[:1]
    eg = A.expected_gradients(f, x, ref, jax.random.PRNGKey(1), samples=1024)
    ig = A.integrated_gradients(f, x, ref[0], steps=256)
    assert abs(float(eg.attributions.sum()) - float(ig.attributions.sum())) < 4 * eg.sum_se
    many = A.expected_gradients(f, x, background_peptides, jax.random.PRNGKey(2), samples=1024)
    assert abs(many.gap) < 4 * many.sum_se
    assert many.f_references == pytest.approx(float(f(jnp.asarray(background_peptides)).mean()), rel=1e-5)


# --------------------------------------------------------------------------- DeepLIFT, traced
