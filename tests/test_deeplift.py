"""DeepLIFT (helpers.deeplift): summation-to-delta where the rules are exact, the gap where
they are not, the special cases where it equals gradient x input, and DeepSHAP."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import attribution as A
from helpers import deeplift as D
from helpers import model as M
from helpers import sequences as S

MELITTIN = "GIGAVLKVLTTGLPALISWIKRKRQQ"
L = 24  # short inputs keep the analytic tests fast


@pytest.fixture(scope="module")
def linear(additive):
    """f(x) = sum(W * x) over L positions (conftest): every method has a closed form."""
    return additive


@pytest.fixture(scope="module")
def dense_tanh():
    """A dense tanh network (biases included) for DeepLIFT's exact summation-to-delta."""

    def make_f(activation):
        def forward(x):
            h = x.reshape(x.shape[0], -1)
            for width in (32, 16):
                h = activation(hk.Linear(width)(h))
            return hk.Linear(1)(h)[:, 0]

        model = hk.without_apply_rng(hk.transform(forward))
        params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, L, 21)))
        return lambda xb: model.apply(params, xb)

    return make_f


def _peptide(seq="KLWKLLKAGV", length=L):
    return jnp.asarray(S.encode(seq, length=length))


def test_deeplift_equals_ig_on_a_linear_model(linear):
    w, f = linear
    x = _peptide()
    b = A.make_baseline("padding", x)
    dl = D.deeplift(lambda act: f, x, b)
    np.testing.assert_allclose(dl.attributions, w * (x - b), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        dl.attributions, A.integrated_gradients(f, x, b, steps=7).attributions, rtol=1e-5, atol=1e-6
    )


# --------------------------------------------------------------------------- the CNN


def test_deeplift_sums_to_delta_on_a_dense_tanh_network(dense_tanh):
    x = _peptide()
    for b in (A.make_baseline("zero", x), A.make_baseline("uniform", x)):
        res = D.deeplift(dense_tanh, x, b)
        assert abs(res.f_x - res.f_baseline) > 1e-3
        assert abs(res.gap) < 1e-5


def test_deeplift_falls_back_to_the_gradient_when_input_equals_reference(dense_tanh):
    x = _peptide()
    act = D.rescale_activation(jnp.tanh)
    z = jnp.array([0.3, -1.0, 0.3, 2.0])  # pairs (0.3, 0.3) and (-1, 2)
    g = jax.grad(lambda z: act(z)[:2].sum())(z)
    assert g[0] == pytest.approx(1 - np.tanh(0.3) ** 2, rel=1e-6)
    assert g[1] == pytest.approx((np.tanh(-1.0) - np.tanh(2.0)) / (-3.0), rel=1e-6)
    res = D.deeplift(dense_tanh, x, x)  # reference = input: zero attributions
    np.testing.assert_allclose(res.attributions, 0.0, atol=1e-7)


def test_deeplift_on_the_cnn_reports_its_gap(cnn):
    params, f = cnn
    x = jnp.asarray(S.encode(MELITTIN))
    res = D.deeplift(lambda act: M.predict_fn(params, activation=act), x)
    assert res.f_x == pytest.approx(float(f(x[None])[0]), rel=1e-6)
    assert np.isfinite(res.gap) and np.isfinite(np.asarray(res.attributions)).all()


# --------------------------------------------------------------------------- API


def test_deeplift_through_a_max_pool_is_exact_only_when_the_argmax_agrees():
    """f = max over positions of tanh(w . x_i): the backward pass routes the multiplier to the
    input's argmax. If the reference's max sits at the same position, summation to delta holds;
    if it sits elsewhere, it cannot (the rescale rule covers elementwise units only)."""
    w = jnp.zeros(21).at[11].set(2.0).at[12].set(-1.0)  # L raises a position's score, K lowers it

    def make_f(activation):
        return lambda xb: activation(jnp.einsum("bla,a->bl", xb, w)).max(axis=1)

    dl = D.make_deeplift(make_f)
    x = jnp.asarray(S.encode("LKA", length=4))
    same = jnp.asarray(S.encode("AKA", length=4))  # max at position 1 for both (L vs A)
    other = jnp.asarray(S.encode("KAA", length=4))  # reference max moves to position 2
    assert abs(dl(x, same).gap) < 1e-6
    assert abs(dl(x, other).gap) > 1e-2


def test_deepshap_averages_deeplift_over_references(linear, dense_tanh):
    w, f = linear
    x = _peptide()
    refs = S.encode_batch(["AAAA", "KKKKKK", "GIGAV"], length=L)
    res = D.deepshap(D.make_deeplift(lambda act: f), x, refs)
    np.testing.assert_allclose(res.attributions, w * (np.asarray(x) - refs.mean(0)), rtol=1e-5, atol=1e-5)
    dense = D.deepshap(D.make_deeplift(dense_tanh), x, refs)
    f_dense = dense_tanh(jnp.tanh)
    assert dense.f_baseline == pytest.approx(float(f_dense(jnp.asarray(refs)).mean()), rel=1e-5)
    assert abs(float(dense.attributions.sum()) - (dense.f_x - dense.f_baseline)) < 1e-5
    with pytest.raises(ValueError, match="references must have shape"):
        D.deepshap(D.make_deeplift(lambda act: f), x, refs[0])


def test_deeplift_traced_reproduces_make_deeplift_and_splits_its_gap(cnn):
    params, f = cnn
    x = jnp.asarray(S.encode(MELITTIN))
    dl = D.make_deeplift(lambda act: M.predict_fn(params, activation=act))
    for kind in ("zero", "uniform"):
        b = A.make_baseline(kind, x)
        plain = D.deeplift_traced(f, x, b, product_rule=False)
        np.testing.assert_allclose(plain.attributions, dl(x, b).attributions, rtol=1e-4, atol=1e-5)
        for r in (plain, D.deeplift_traced(f, x, b)):
            assert sum(r.by_operation.values()) == pytest.approx(r.gap, abs=1e-4 * abs(r.f_x - r.f_baseline))
            assert sum(s for *_, s in r.sites) == pytest.approx(r.gap, abs=1e-4 * abs(r.f_x - r.f_baseline))
    # uniform reference: same mask and length, so only max-pooling breaks summation to delta
    uni = D.deeplift_traced(f, x, A.make_baseline("uniform", x))
    assert abs(uni.gap) > 1e-3 and uni.by_operation["reduce_window_max"] == pytest.approx(uni.gap, rel=1e-3)


def test_exact_product_and_quotient_rules():
    w = jax.random.normal(jax.random.PRNGKey(0), (3, 6))

    def f(xb):  # a product and a quotient of input-dependent values, and a square
        u, v, s = xb @ w[0], xb @ w[1], xb @ w[2]
        return jnp.tanh(u) * v + u / (1.0 + s**2)

    x, b = jnp.linspace(-1.0, 1.0, 6), jnp.full(6, 0.3)
    exact = D.deeplift_traced(f, x, b)
    assert abs(exact.f_x - exact.f_baseline) > 0.1 and abs(exact.gap) < 1e-5 and not exact.sites
    plain = D.deeplift_traced(f, x, b, product_rule=False)
    assert abs(plain.gap) > 1e-2
    assert set(plain.by_operation) == {"mul", "div"}
    assert sum(plain.by_operation.values()) == pytest.approx(plain.gap, rel=1e-4)


def test_deeplift_traced_max_share_is_the_whole_gap():
    w = jnp.zeros(21).at[11].set(2.0).at[12].set(-1.0)
    f = jax.jit(lambda xb: jnp.tanh(jnp.einsum("bla,a->bl", xb, w)).max(axis=1))
    x, other = jnp.asarray(S.encode("LKA", length=4)), jnp.asarray(S.encode("KAA", length=4))
    r = D.deeplift_traced(f, x, other)
    assert r.gap == pytest.approx(D.make_deeplift(lambda act: lambda xb: act(jnp.einsum("bla,a->bl", xb, w)).max(axis=1))(x, other).gap, rel=1e-5)
    assert list(r.by_operation) == ["reduce_max"] and r.by_operation["reduce_max"] == pytest.approx(r.gap, rel=1e-5)


def test_relu_without_biases_zero_baseline_deeplift_is_gradient_x_input():
    """Ancona et al. (2018): for a ReLU network without biases and the zero baseline, every
    unit's secant from 0 is relu(z) / z = relu'(z), so DeepLIFT (rescale) = gradient x input."""

    def make_f(activation):
        def forward(xb):
            h = xb.reshape(xb.shape[0], -1)
            for width in (32, 16):
                h = activation(hk.Linear(width, with_bias=False)(h))
            return hk.Linear(1, with_bias=False)(h)[:, 0]

        model = hk.without_apply_rng(hk.transform(forward))
        p = model.init(jax.random.PRNGKey(4), jnp.zeros((1, L, 21)))
        return jax.jit(lambda xb: model.apply(p, xb))

    x = _peptide()
    f = make_f(jax.nn.relu)
    gxi = A.gradient_x_input(f, x)
    dl = D.make_deeplift(make_f, activation=jax.nn.relu)(x)
    assert abs(float(gxi.sum())) > 1e-3
    np.testing.assert_allclose(dl.attributions, gxi, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(D.deeplift_traced(f, x).attributions, gxi, rtol=1e-5, atol=1e-6)
    b = A.make_baseline("uniform", x)  # another baseline: no longer gradient x input
    assert not np.allclose(D.make_deeplift(make_f, activation=jax.nn.relu)(x, b).attributions, (x - b) * A.saliency(f, x), atol=1e-4)


def test_deeplift_is_not_implementation_invariant():
    """Sundararajan et al. (2017), section 2.2: two networks computing the same function,
    relu(relu(x1) - 1 - relu(x2)) and relu(relu(x1 - 1) - relu(x2)), get different DeepLIFT
    attributions at x = (3, 1) from (0, 0); their gradients (and so IG) agree."""
    relu = jax.nn.relu
    f = lambda v: relu(relu(v[:, 0]) - 1 - relu(v[:, 1]))  # noqa: E731
    g = lambda v: relu(relu(v[:, 0] - 1) - relu(v[:, 1]))  # noqa: E731
    grid = jnp.stack(jnp.meshgrid(jnp.linspace(-3, 3, 25), jnp.linspace(-3, 3, 25)), -1).reshape(-1, 2)
    np.testing.assert_allclose(f(grid), g(grid), atol=1e-6)
    x = jnp.array([3.0, 1.0])
    np.testing.assert_allclose(D.deeplift_traced(f, x).attributions, [1.5, -0.5], rtol=1e-6)
    np.testing.assert_allclose(D.deeplift_traced(g, x).attributions, [2.0, -1.0], rtol=1e-6)
    np.testing.assert_allclose(jax.grad(lambda v: f(v[None])[0])(x), jax.grad(lambda v: g(v[None])[0])(x))


def test_deeplift_traced_rejects_bad_input():
    f = lambda v: v.sum(-1)  # noqa: E731
    with pytest.raises(ValueError, match="baseline has shape"):
        D.deeplift_traced(f, jnp.ones(3), jnp.ones(4))
    with pytest.raises(ValueError, match="finite"):
        D.deeplift_traced(f, jnp.array([1.0, jnp.nan]))
    with pytest.raises(ValueError, match="logits"):
        D.deeplift_traced(lambda v: v, jnp.ones(3))


def test_old_names_in_attribution_resolve_to_this_module():
    for name in A._MOVED_TO_DEEPLIFT:
        assert getattr(A, name) is getattr(D, name)
    with pytest.raises(AttributeError, match="no attribute 'not_a_method'"):
        A.not_a_method
