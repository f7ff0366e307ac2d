"""Influence functions: every piece against a dense computation, and the whole against
actual leave-one-out retraining (the ground truth)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from helpers import data as D
from helpers import influence as I
from helpers import model as M

WD = 1e-3


@pytest.fixture(scope="module")
def convex():
    """Logistic regression on amino-acid composition, fitted by Newton in float64:
    (params, (x_train, y_train), (x_test, y_test))."""
    tr, te = D.load_split("train"), D.load_split("test")
    with jax.enable_x64(True):
        xtr = np.asarray(I.composition_features(tr.x), np.float64)
        xte = np.asarray(I.composition_features(te.x), np.float64)
        p0 = {"w": jnp.zeros(20), "b": jnp.zeros(())}
        fit = I.fit(I.logistic_loss, p0, xtr, tr.y, weight_decay=WD, method="newton", tol=1e-12)
        assert float(fit.grad_norm) < 1e-12
        params = jax.tree.map(np.asarray, fit.params)
    return params, (xtr, tr.y.astype(np.float64)), (xte, te.y.astype(np.float64))


def _mlp():
    """A small non-convex model (tanh MLP, 2 x 5 + 5 weights) and random data."""
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(0), 4)
    params = {"w1": jax.random.normal(k1, (2, 5)), "w2": jax.random.normal(k2, (5,))}
    x = jax.random.normal(k3, (40, 2))
    y = (jax.random.uniform(k4, (40,)) < 0.5).astype(jnp.float32)

    def loss(p, xb, yb):
        return optax.sigmoid_binary_cross_entropy(jnp.tanh(xb @ p["w1"]) @ p["w2"], yb)

    return loss, params, x, y


def test_hvp_equals_exact_hessian_times_v(convex):
    params, (x, y), _ = convex
    with jax.enable_x64(True):
        h = np.asarray(I.exact_hessian(I.logistic_loss, params, x, y, weight_decay=WD))
        hvp = I.make_hvp(I.logistic_loss, params, x, y, weight_decay=WD)
        v = np.random.default_rng(0).normal(size=21)
        np.testing.assert_allclose(np.asarray(hvp(jnp.asarray(v))), h @ v, rtol=1e-10, atol=1e-14)
    # non-convex, float32
    loss, p, xm, ym = _mlp()
    h = np.asarray(I.exact_hessian(loss, p, xm, ym, weight_decay=0.1))
    v = jnp.arange(15.0) / 15
    np.testing.assert_allclose(np.asarray(I.make_hvp(loss, p, xm, ym, weight_decay=0.1)(v)), h @ np.asarray(v), atol=1e-5)
    assert np.allclose(h, h.T, atol=1e-6)


def test_composition_makes_the_unregularised_hessian_singular(convex):
    # The 20 fractions sum to 1, so the bias is a sum of the weights: one zero eigenvalue.
    params, (x, y), _ = convex
    with jax.enable_x64(True):
        ev = np.linalg.eigvalsh(np.asarray(I.exact_hessian(I.logistic_loss, params, x, y)))
    assert abs(ev[0]) < 1e-12 * ev[-1] and ev[1] > 1e-6


def test_cg_and_lissa_match_a_dense_solve(convex):
    params, (x, y), (xt, yt) = convex
    with jax.enable_x64(True):
        h = np.asarray(I.exact_hessian(I.logistic_loss, params, x, y, weight_decay=WD))
        hvp = I.make_hvp(I.logistic_loss, params, x, y, weight_decay=WD)
        b = np.asarray(I.per_example_grads(I.logistic_loss, params, xt[:3], yt[:3]))  # [3, 21]
        truth = np.linalg.solve(h + 1e-3 * np.eye(21), b.T).T
        cg = I.conjugate_gradient(hvp, b, damping=1e-3, tol=1e-12, maxiter=200)
        np.testing.assert_allclose(np.asarray(cg.x), truth, rtol=1e-8)
        assert cg.x.shape == (3, 21) and np.all(np.asarray(cg.residual) < 1e-11)
        assert np.all(np.asarray(cg.iterations) <= 21 + 5)  # CG: at most P steps in exact arithmetic
        # LiSSA converges as (1 - smallest eigenvalue / scale)^depth: damping 1e-2 keeps it short
        top = np.linalg.eigvalsh(h)[-1]
        truth = np.linalg.solve(h + 1e-2 * np.eye(21), b[0])
        ls = I.lissa(hvp, b[0], scale=1.5 * top, damping=1e-2, depth=1000)
        np.testing.assert_allclose(np.asarray(ls.x), truth, rtol=1e-6)
        assert float(ls.residual) < 1e-8
        # the stochastic version (mini-batches of 512) is close, not exact
        hvp_b = I.make_hvp(I.logistic_loss, params, x, y, weight_decay=WD, batch_size=512)
        st = I.lissa(hvp_b, b[0], scale=1.5 * top, damping=1e-2, depth=500, key=jax.random.PRNGKey(0), repeats=2, full_hvp=hvp)
        assert np.linalg.norm(np.asarray(st.x) - truth) / np.linalg.norm(truth) < 0.1
        assert float(st.residual) < 0.1
        with pytest.raises(FloatingPointError, match="scale"):
            I.lissa(hvp, b[0], scale=0.2 * top, depth=3000)


def test_cg_flags_negative_curvature():
    res = I.conjugate_gradient(lambda v: jnp.array([1.0, -1.0]) * v, jnp.array([0.0, 1.0]))
    assert bool(res.negative_curvature)


def test_extreme_eigenvalues_of_a_known_spectrum():
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(30, 30)))
    spectrum = np.linspace(-0.5, 4.0, 30)
    a = jnp.asarray(q @ np.diag(spectrum) @ q.T, jnp.float32)
    hi, lo = I.extreme_eigenvalues(lambda v: a @ v, 30, jax.random.PRNGKey(0), iters=400)
    assert abs(hi - 4.0) < 1e-3 and abs(lo + 0.5) < 0.05


def test_per_example_grads_and_directional_derivatives_against_a_loop():
    loss, p, x, y = _mlp()
    g = np.asarray(I.per_example_grads(loss, p, x, y, batch_size=16))
    theta, unravel = I.flatten(p)
    for i in (0, 17, 39):
        gi = jax.grad(lambda t, i=i: loss(unravel(t), x[i : i + 1], y[i : i + 1])[0])(theta)
        np.testing.assert_allclose(g[i], np.asarray(gi), rtol=1e-5, atol=1e-6)
    d = np.random.default_rng(0).normal(size=(3, 15)).astype(np.float32)
    dd = np.asarray(I.directional_derivatives(loss, p, x, y, d, batch_size=7))
    np.testing.assert_allclose(dd, d @ g.T, rtol=1e-4, atol=1e-5)
    assert I.directional_derivatives(loss, p, x, y, d[0]).shape == (40,)


def test_influence_predicts_leave_one_out_on_the_convex_model(convex):
    """Koh & Liang's check: remove the 40 training peptides of largest |influence| on a test
    peptide, one at a time, retrain exactly (Newton), compare the change in its loss."""
    params, train, (xt, yt) = convex
    with jax.enable_x64(True):
        for t in (0, 5):
            test = (xt[t : t + 1], yt[t : t + 1])
            res = I.influence(I.logistic_loss, params, train, test, weight_decay=WD, tol=1e-10)
            ex = I.influence(I.logistic_loss, params, train, test, weight_decay=WD, solver="exact")
            scale = np.abs(np.asarray(ex.removal)).max()
            np.testing.assert_allclose(np.asarray(res.removal), np.asarray(ex.removal), rtol=0, atol=1e-8 * scale)
            np.testing.assert_allclose(np.asarray(res.up_loss), -len(train[1]) * np.asarray(res.removal))
            predicted = np.asarray(res.removal[0])
            top = np.argsort(-np.abs(predicted))[:40]
            loo = I.fit(
                I.logistic_loss, params, *train, weight_decay=WD, method="newton", tol=1e-13,
                weights=I.removal_weights(len(train[1]), top),
            )
            assert np.all(np.asarray(loo.grad_norm) < 1e-13)
            before = float(I.logistic_loss(params, *test)[0])
            after = np.asarray(jax.vmap(lambda p, test=test: I.logistic_loss(p, *test)[0])(loo.params))
            actual = after - before
            assert np.corrcoef(predicted[top], actual)[0, 1] > 0.95
            np.testing.assert_allclose(predicted[top], actual, rtol=0.05, atol=1e-3 * np.abs(actual).max())


def test_lbfgs_and_newton_reach_the_same_minimum(convex):
    params, (x, y), _ = convex
    with jax.enable_x64(True):
        p0 = {"w": jnp.zeros(20), "b": jnp.zeros(())}
        lb = I.fit(I.logistic_loss, p0, x, y, weight_decay=WD, method="lbfgs", tol=1e-10, maxiter=2000)
        assert float(lb.grad_norm) < 1e-10
        np.testing.assert_allclose(np.asarray(lb.params["w"]), params["w"], atol=1e-6)
        # one vmapped fit per weight row equals fitting each row alone
        w = I.removal_weights(len(y), [3, 10])
        both = I.fit(I.logistic_loss, params, x, y, weight_decay=WD, weights=w, method="newton", tol=1e-12)
        one = I.fit(I.logistic_loss, params, x, y, weight_decay=WD, weights=w[1], method="newton", tol=1e-12)
        np.testing.assert_allclose(np.asarray(both.params["w"][1]), np.asarray(one.params["w"]), atol=1e-12)


def test_tracin_with_one_checkpoint_is_a_gradient_dot_product():
    loss, p, x, y = _mlp()
    scores = np.asarray(I.tracin(loss, [p, p], [0.5, 0.25], (x, y), (x[:3], y[:3])))
    g = np.asarray(I.per_example_grads(loss, p, x, y))
    np.testing.assert_allclose(scores, 0.75 * g[:3] @ g.T, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="one learning rate per checkpoint"):
        I.tracin(loss, [p], [0.1, 0.2], (x, y), (x, y))
    with pytest.raises(ValueError, match="at least one checkpoint"):
        I.tracin(loss, [], [], (x, y), (x, y))


def test_the_head_composes_with_the_features_to_the_full_model(cnn):
    params, f = cnn
    x = D.load_split("test").x[:20]
    feats = M.make_features().apply(params, x)
    np.testing.assert_allclose(
        np.asarray(M.make_head().apply(M.head_params(params), feats)), np.asarray(f(x)), atol=1e-6
    )
    with pytest.raises(ValueError, match="no dense layers"):
        M.head_params({"conv0": {}})


def test_clear_errors():
    loss, p, x, y = _mlp()
    with pytest.raises(ValueError, match="empty"):
        I.make_hvp(loss, p, x[:0], y[:0])
    with pytest.raises(ValueError, match="empty"):
        I.influence(loss, p, (x[:0], y[:0]), (x, y))
    with pytest.raises(ValueError, match=r"labels of shape"):
        I.make_hvp(loss, p, x, y[:5])
    with pytest.raises(ValueError, match="NaN"):
        I.make_hvp(loss, p, x.at[0, 0].set(jnp.nan), y)
    with pytest.raises(ValueError, match="Hessian-vector products"):
        I.exact_hessian(loss, p, x, y, max_params=10)
    with pytest.raises(ValueError, match="unknown solver"):
        I.influence(loss, p, (x, y), (x, y), solver="svd")
    with pytest.raises(ValueError, match="negative curvature"):
        I.influence(loss, p, (x, y), (x[:2], y[:2]))  # random weights: not a minimum
    with pytest.raises(ValueError, match="did not converge"):
        I.influence(loss, p, (x, y), (x[:2], y[:2]), damping=50.0, maxiter=1, tol=1e-9)
    with pytest.raises(ValueError, match="LiSSA needs a scale"):
        I.influence(loss, p, (x, y), (x[:2], y[:2]), solver="lissa")
    with pytest.raises(ValueError, match="indices"):
        I.removal_weights(10, [10])
    with pytest.raises(ValueError, match="empty"):
        I.removal_weights(0, [0])
    with pytest.raises(ValueError, match="last axis"):
        I.fit(loss, p, x, y, weights=np.ones(3))
    with pytest.raises(ValueError, match="unknown method"):
        I.fit(loss, p, x, y, method="adam")
    with pytest.raises(ValueError, match="batch_size"):
        I.make_hvp(loss, p, x, y, batch_size=0)
    with pytest.raises(ValueError, match="no residue"):
        I.composition_features(np.zeros((2, 5, 21)))
