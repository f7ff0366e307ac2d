"""Influence functions: every piece against a dense computation, and the whole against
actual leave-one-out retraining (the ground truth)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from helpers import data as D
from helpers import influence as I
from helpers import influence_experiments as E
from helpers import spectrum as S
from helpers import model as M

WD = 1e-3


@pytest.fixture(scope="module")
def convex():
    """Logistic regression on amino-acid composition, fitted by Newton in float64:
    (params, (x_train, y_train), (x_test, y_test))."""
    tr, te = D.load_split("train"), D.load_split("test")
    with jax.enable_x64(True):
        xtr = np.asarray(E.composition_features(tr.x), np.float64)
        xte = np.asarray(E.composition_features(te.x), np.float64)
        p0 = {"w": jnp.zeros(20), "b": jnp.zeros(())}
        fit = I.fit(E.logistic_loss, p0, xtr, tr.y, weight_decay=WD, method="newton", tol=1e-12)
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
        h = np.asarray(I.exact_hessian(E.logistic_loss, params, x, y, weight_decay=WD))
        hvp = I.make_hvp(E.logistic_loss, params, x, y, weight_decay=WD)
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
        ev = np.linalg.eigvalsh(np.asarray(I.exact_hessian(E.logistic_loss, params, x, y)))
    assert abs(ev[0]) < 1e-12 * ev[-1] and ev[1] > 1e-6


def test_cg_and_lissa_match_a_dense_solve(convex):
    params, (x, y), (xt, yt) = convex
    with jax.enable_x64(True):
        h = np.asarray(I.exact_hessian(E.logistic_loss, params, x, y, weight_decay=WD))
        hvp = I.make_hvp(E.logistic_loss, params, x, y, weight_decay=WD)
        b = np.asarray(I.per_example_grads(E.logistic_loss, params, xt[:3], yt[:3]))  # [3, 21]
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
        hvp_b = I.make_hvp(E.logistic_loss, params, x, y, weight_decay=WD, batch_size=512)
        st = I.lissa(hvp_b, b[0], scale=1.5 * top, damping=1e-2, depth=500, key=jax.random.PRNGKey(0), repeats=2, full_hvp=hvp)
        assert np.linalg.norm(np.asarray(st.x) - truth) / np.linalg.norm(truth) < 0.1
        assert float(st.residual) < 0.1
        with pytest.raises(FloatingPointError, match="scale"):
            I.lissa(hvp, b[0], scale=0.2 * top, depth=3000)


def test_cg_flags_negative_curvature():
    res = I.conjugate_gradient(lambda v: jnp.array([1.0, -1.0]) * v, jnp.array([0.0, 1.0]))
    assert bool(res.negative_curvature)


def test_host_loops_repeat_the_device_loops():
    """loop='host' (one compiled iteration, repeated from Python) gives the device loop's
    iterates: CG's solution and iteration count, Lanczos's Ritz values; and `lbfgs_host`
    reaches the same minimum as the device L-BFGS on the non-convex MLP."""
    from helpers import influence_solvers as IS

    q, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(30, 30)))
    a = jnp.asarray(q @ np.diag(np.linspace(0.5, 4.0, 30)) @ q.T, jnp.float32)
    b = jnp.asarray(np.random.default_rng(4).normal(size=(2, 30)), jnp.float32)
    dev = I.conjugate_gradient(lambda v: a @ v, b, damping=0.1, tol=1e-5, maxiter=12)
    host = I.conjugate_gradient(lambda v: a @ v, b, damping=0.1, tol=1e-5, maxiter=12, loop="host")
    np.testing.assert_array_equal(np.asarray(dev.iterations), np.asarray(host.iterations))
    np.testing.assert_allclose(np.asarray(dev.x), np.asarray(host.x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(dev.residual), np.asarray(host.residual), rtol=1e-3, atol=1e-7)
    np.testing.assert_array_equal(np.asarray(dev.negative_curvature), np.asarray(host.negative_curvature))
    for lp in ("device", "host"):  # integer right-hand sides are solved in floating point on both loops
        sol = I.conjugate_gradient(lambda v: 2.0 * v, jnp.array([2, 4]), loop=lp)
        np.testing.assert_allclose(np.asarray(sol.x), [1.0, 2.0], rtol=1e-5)
    one = I.conjugate_gradient(lambda v: a @ v, b[0], damping=0.1, loop="host")
    assert one.x.shape == (30,) and float(one.residual) < 1e-5
    neg = I.conjugate_gradient(lambda v: jnp.array([1.0, -1.0]) * v, jnp.array([0.0, 1.0]), loop="host")
    assert bool(neg.negative_curvature)
    ld = S.lanczos(lambda v: a @ v, 30, jax.random.PRNGKey(0), steps=12)
    lh = S.lanczos(lambda v: a @ v, 30, jax.random.PRNGKey(0), steps=12, loop="host")
    np.testing.assert_allclose(ld.ritz_values, lh.ritz_values, rtol=1e-5, atol=1e-5)
    for bad in ("Host", None, "gpu"):
        with pytest.raises(ValueError, match="loop must be one of"):
            I.conjugate_gradient(lambda v: a @ v, b[0], loop=bad)
        with pytest.raises(ValueError, match="loop must be one of"):
            S.lanczos(lambda v: a @ v, 30, jax.random.PRNGKey(0), steps=3, loop=bad)

    loss, p, x, y = _mlp()
    objective, theta0, _ = I.make_objective(loss, p, x, y, weight_decay=0.1)
    t_dev, _, gn_dev = IS.lbfgs_while(lambda t: objective(t, jnp.ones(40)), theta0, maxiter=500, tol=1e-5)
    seen = []
    fit = IS.lbfgs_host(_mlp_objective, theta0, args=(x, y), maxiter=500, tol=1e-5, on_step=lambda k, t: seen.append(k))
    assert fit.grad_norm < 1e-4 and float(gn_dev) < 1e-4 and not fit.stalled
    assert seen == list(range(1, fit.steps + 1))  # on_step after every accepted step
    rel = IS.lbfgs_host(_mlp_objective, theta0, args=(x, y), maxiter=500, tol=1e-3, relative=True)
    assert rel.grad_norm <= 1e-3 * rel.grad_norm0 and rel.steps < fit.steps
    np.testing.assert_allclose(np.asarray(fit.theta), np.asarray(t_dev), atol=1e-3)
    assert abs(float(objective(fit.theta, jnp.ones(40))) - float(objective(t_dev, jnp.ones(40)))) < 1e-6
    with pytest.raises(ValueError, match="theta0 contains NaN"):
        IS.lbfgs_host(_mlp_objective, theta0 * jnp.nan, args=(x, y), maxiter=5, tol=1e-5)
    with pytest.raises(FloatingPointError, match="at theta0"):  # |t|^2 overflows float32
        IS.lbfgs_host(_mlp_objective, theta0 * 1e30, args=(x, y), maxiter=5, tol=1e-5)
    with pytest.raises(ValueError, match="theta0 must be a flat vector"):
        IS.lbfgs_host(_mlp_objective, theta0[None], args=(x, y), maxiter=5, tol=1e-5)
    with pytest.raises(TypeError, match="args must be a tuple"):
        IS.lbfgs_host(_mlp_objective, theta0, args=jnp.ones(3), maxiter=5, tol=1e-5)
    with pytest.raises(TypeError, match="on_step"):
        IS.lbfgs_host(_mlp_objective, theta0, args=(x, y), maxiter=5, tol=1e-5, on_step=3)
    # a finite value with a NaN gradient is never accepted: the fit stops at the floor, not on NaN
    nan_beyond = IS.lbfgs_host(_value_ok_gradient_nan, jnp.array([2.0]), maxiter=20, tol=0.0)
    assert nan_beyond.stalled and np.isfinite(nan_beyond.grad_norm) and float(nan_beyond.theta[0]) >= 1.0


@jax.custom_jvp
def _nan_gradient_below_one(t):
    return jnp.sum(t**2)


@_nan_gradient_below_one.defjvp
def _nan_gradient_below_one_jvp(primals, tangents):
    (t,), (dt,) = primals, tangents
    slope = jnp.where(t < 1.0, jnp.nan, 2 * t)  # the gradient is NaN left of 1, the value finite
    return jnp.sum(t**2), jnp.sum(slope * dt)


def _value_ok_gradient_nan(t):
    return _nan_gradient_below_one(t)



def _mlp_objective(t, x, y):
    """The MLP's training objective (weight decay 0.1) at flat parameters `t`, with the data as
    arguments: what `lbfgs_host` compiles once."""
    loss, p, _, _ = _mlp()
    return jnp.mean(loss(I.flatten(p)[1](t), x, y)) + 0.05 * jnp.vdot(t, t)


def test_extreme_eigenvalues_of_a_known_spectrum():
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(30, 30)))
    spectrum = np.linspace(-0.5, 4.0, 30)
    a = jnp.asarray(q @ np.diag(spectrum) @ q.T, jnp.float32)
    hi, lo = S.extreme_eigenvalues(lambda v: a @ v, 30, jax.random.PRNGKey(0), iters=400)
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
            res = I.influence(E.logistic_loss, params, train, test, weight_decay=WD, tol=1e-10)
            ex = I.influence(E.logistic_loss, params, train, test, weight_decay=WD, solver="exact")
            scale = np.abs(np.asarray(ex.removal)).max()
            np.testing.assert_allclose(np.asarray(res.removal), np.asarray(ex.removal), rtol=0, atol=1e-8 * scale)
            np.testing.assert_allclose(np.asarray(res.up_loss), -len(train[1]) * np.asarray(res.removal))
            predicted = np.asarray(res.removal[0])
            top = np.argsort(-np.abs(predicted))[:40]
            loo = I.fit(
                E.logistic_loss, params, *train, weight_decay=WD, method="newton", tol=1e-13,
                weights=I.removal_weights(len(train[1]), top),
            )
            assert np.all(np.asarray(loo.grad_norm) < 1e-13)
            before = float(E.logistic_loss(params, *test)[0])
            after = np.asarray(jax.vmap(lambda p, test=test: E.logistic_loss(p, *test)[0])(loo.params))
            actual = after - before
            assert np.corrcoef(predicted[top], actual)[0, 1] > 0.95
            np.testing.assert_allclose(predicted[top], actual, rtol=0.05, atol=1e-3 * np.abs(actual).max())


def test_lbfgs_and_newton_reach_the_same_minimum(convex):
    params, (x, y), _ = convex
    with jax.enable_x64(True):
        p0 = {"w": jnp.zeros(20), "b": jnp.zeros(())}
        lb = I.fit(E.logistic_loss, p0, x, y, weight_decay=WD, method="lbfgs", tol=1e-10, maxiter=2000)
        assert float(lb.grad_norm) < 1e-10
        np.testing.assert_allclose(np.asarray(lb.params["w"]), params["w"], atol=1e-6)
        # one vmapped fit per weight row equals fitting each row alone
        w = I.removal_weights(len(y), [3, 10])
        both = I.fit(E.logistic_loss, params, x, y, weight_decay=WD, weights=w, method="newton", tol=1e-12)
        one = I.fit(E.logistic_loss, params, x, y, weight_decay=WD, weights=w[1], method="newton", tol=1e-12)
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
        E.composition_features(np.zeros((2, 5, 21)))


def test_lanczos_matches_eigvalsh_on_a_small_matrix():
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.normal(size=(40, 40)))
    # a cluster of tiny eigenvalues under a large top one, and one negative: the hard case
    spectrum = np.concatenate([[-0.3, 1e-4, 2e-4, 3e-4], np.linspace(0.05, 1.0, 35), [6.0]])
    a = q @ np.diag(spectrum) @ q.T
    dense = np.linalg.eigvalsh(a)
    with jax.enable_x64(True):
        full = S.lanczos(lambda v: jnp.asarray(a) @ v, 40, jax.random.PRNGKey(0), steps=40)
        np.testing.assert_allclose(full.ritz_values, dense, atol=1e-10)  # K = P: every eigenvalue
        part = S.lanczos(lambda v: jnp.asarray(a) @ v, 40, jax.random.PRNGKey(0), steps=20)
    # fewer steps: the extremes first, and every Ritz value within its bound of an eigenvalue
    assert abs(part.ritz_values[0] - dense[0]) < 1e-6 and abs(part.ritz_values[-1] - dense[-1]) < 1e-6
    dist = np.abs(part.ritz_values[:, None] - dense[None]).min(axis=1)
    assert np.all(dist <= part.error_bounds + 1e-12)
    assert part.ritz_values[0] >= dense[0] - 1e-12  # a Rayleigh quotient never undershoots
    # float32 and a positive definite matrix with a cluster near zero: found, not blended
    pd = q @ np.diag(np.abs(spectrum) + 0.01) @ q.T
    lz = S.lanczos(lambda v: jnp.asarray(pd, jnp.float32) @ v, 40, jax.random.PRNGKey(1), steps=30)
    assert abs(lz.ritz_values[0] - 0.0101) < 1e-4
    with pytest.raises(ValueError, match="steps"):
        S.lanczos(lambda v: v, 5, jax.random.PRNGKey(0), steps=6)


def test_head_script_on_a_small_setting(tmp_path):
    out = tmp_path / "head.npz"
    I.main(["--small", "--out", str(out)])
    st = E.load_head_study(out)
    d = st.data
    assert int(d["config_sgd_epochs"]) == 2 and int(d["config_maxiter"]) == 20 and int(d["iterations"]) <= 20
    assert str(d["config_command"]).startswith("python -m helpers.influence --small")
    assert d["theta"].shape == (30016,) and d["other_test_losses"].shape == (1, len(d["test_losses"]))
    assert list(d["other_seeds"]) == [1]
    # the shipped parameters unflatten into the head's layout and give the saved test losses
    prob = E.head_problem()
    np.testing.assert_allclose(np.asarray(E.head_loss(st.params, prob.feat_test, prob.y_test)), d["test_losses"], rtol=1e-6, atol=1e-6)
    # the SGD phase of train_head alone ends where the script's did, on the same machine exactly
    run = E.train_head(prob.feat_train, prob.y_train, seed=0, sgd_epochs=2, every=1, polish=False)
    assert len(run.checkpoints) == 2
    np.testing.assert_array_equal(np.asarray(M.make_head().apply(run.sgd_params, prob.feat_test)), d["sgd_test_logits"])
    with pytest.raises(ValueError, match="batch_size"):
        E.train_head(prob.feat_train, prob.y_train, seed=0, batch_size=0, polish=False)


def test_shipped_head_sgd_phase_and_minimum():
    """The fast part of the check below: the SGD phase of the shipped seed-0 head rerun here
    (what chapter 9 reruns for TracIn) ends where the script's did, and the shipped head is a
    minimum with the gradient summed on this machine."""
    st = E.load_head_study()
    d = st.data
    assert str(d["config_command"]) == "python -m helpers.influence"
    assert {k: float(d[f"config_{k}"]) for k in E.HEAD_SETTINGS} == {k: float(v) for k, v in E.HEAD_SETTINGS.items()}
    assert float(d["grad_norm"]) < 1e-6 and float(d["other_grad_norm"][0]) < 1e-6
    prob = E.head_problem()
    run = E.train_head(prob.feat_train, prob.y_train, seed=0, polish=False)
    sgd_logits = np.asarray(M.make_head().apply(run.sgd_params, prob.feat_test))
    assert np.abs(sgd_logits - d["sgd_test_logits"]).max() < E.SGD_LOGIT_TOL
    objective, theta, _ = I.make_objective(E.head_loss, st.params, prob.feat_train, prob.y_train,
                                           weight_decay=E.HEAD_SETTINGS["weight_decay"])
    assert float(jnp.linalg.norm(jax.grad(objective)(theta, 1.0))) < 2e-6


@pytest.mark.slow
def test_shipped_head_is_reproduced_by_its_script():
    """Rerun the shipped seed-0 head here, L-BFGS included (about 1400 full-batch steps: marked
    slow; the SGD phase and the minimum are checked fast above), and compare within measured spreads.

    Measured on the machine that made the file, rerunning the script under `taskset -c 0`
    (1 thread instead of 2, so XLA sums in another order): the SGD phase's test logits were
    identical (a 1e-7 jitter of the initial weights moves them by at most 1e-6, hence
    SGD_LOGIT_TOL = 1e-3); after L-BFGS, parameters differed by up to 1.4e-3 (along nearly
    flat directions of R) and test losses by up to 3.7e-5. Tolerance for test losses: 1e-3,
    about 25 x that, and still below the median leave-one-out effect chapter 9 measures."""
    st = E.load_head_study()
    d = st.data
    assert str(d["config_command"]) == "python -m helpers.influence"
    assert {k: float(d[f"config_{k}"]) for k in E.HEAD_SETTINGS} == {k: float(v) for k, v in E.HEAD_SETTINGS.items()}
    assert float(d["grad_norm"]) < 1e-6 and float(d["other_grad_norm"][0]) < 1e-6
    prob = E.head_problem()
    run = E.train_head(prob.feat_train, prob.y_train, seed=0)
    sgd_logits = np.asarray(M.make_head().apply(run.sgd_params, prob.feat_test))
    assert np.abs(sgd_logits - d["sgd_test_logits"]).max() < E.SGD_LOGIT_TOL
    assert float(run.fit.grad_norm) < 1e-6
    losses = np.asarray(E.head_loss(run.fit.params, prob.feat_test, prob.y_test))
    np.testing.assert_allclose(losses, d["test_losses"], atol=1e-3)
    # the shipped head is a minimum with the gradient summed on this machine
    objective, theta, _ = I.make_objective(E.head_loss, st.params, prob.feat_train, prob.y_train,
                                           weight_decay=E.HEAD_SETTINGS["weight_decay"])
    assert float(jnp.linalg.norm(jax.grad(objective)(theta, 1.0))) < 2e-6


def test_weak_study_script_on_a_small_setting(tmp_path):
    out = tmp_path / "weak.npz"
    I.main(["--weak", "--small", "--out", str(out)])
    d = E.load_head_study(out).data
    assert float(d["config_weight_decay"]) == 1e-3 and str(d["config_command"]).startswith("python -m helpers.influence --weak --small")
    assert d["test_losses"].shape[0] == 2 and len(d["removed"]) == len(d["predicted"]) == len(d["actual"]) == 2
    assert int(d["test_index"]) == int(np.argmax(d["test_losses"][0]))
    assert np.all(np.abs(d["predicted"][:-1]) >= np.abs(d["predicted"][1:]))  # largest first


def test_shipped_weak_study_is_consistent():
    """The shipped weak-weight-decay study: converged fits, and its predicted effects
    recomputed here from its head. Measured spread: recomputed under `taskset -c 0` (another
    summation order) the predicted effects moved by 2e-5 of the largest. Tolerance 2% of the
    largest effect, 1000 x that: at this weight decay H has eigenvalues near 1e-5, along
    which CG's answer (relative residual 1e-5) can move more on another CPU."""
    st = E.load_head_study(name=E.WEAK_FILE)
    d = st.data
    assert str(d["config_command"]) == "python -m helpers.influence --weak" and float(d["config_weight_decay"]) == 1e-3
    assert np.all(d["grad_norm"] < 1e-6) and np.all(d["loo_grad_norm"] < 1e-6)
    prob = E.head_problem()
    ti = int(d["test_index"])
    test = (prob.feat_test[ti : ti + 1], prob.y_test[ti : ti + 1])
    np.testing.assert_allclose(np.asarray(E.head_loss(st.params, *test)), d["test_losses"][0, ti : ti + 1], rtol=1e-5)
    res = I.influence(E.head_loss, st.params, (prob.feat_train, prob.y_train), test, weight_decay=1e-3, maxiter=500)
    predicted = np.asarray(res.removal[0])[d["removed"]]
    np.testing.assert_allclose(predicted, d["predicted"], rtol=0, atol=0.02 * np.abs(d["predicted"]).max())


def test_self_influence_and_tracin_self_against_dense_computations():
    loss, p, x, y = _mlp()
    h = np.asarray(I.exact_hessian(loss, p, x, y, weight_decay=1.0), np.float64)
    g = np.asarray(I.per_example_grads(loss, p, x, y), np.float64)  # [40, 15]
    truth = np.array([gi @ np.linalg.solve(h + 0.5 * np.eye(15), gi) for gi in g])
    np.testing.assert_allclose(np.asarray(I.self_influence(loss, p, x, y, weight_decay=1.0, damping=0.5)), truth, rtol=1e-4)
    # TracIn's self-influence is the diagonal of the TracIn matrix of the training set with itself
    q = jax.tree.map(lambda a: 0.5 * a, p)
    full = np.asarray(I.tracin(loss, [p, q], [0.3, 0.1], (x, y), (x, y)))
    np.testing.assert_allclose(np.asarray(I.tracin_self(loss, [p, q], [0.3, 0.1], x, y, batch_size=16)), np.diag(full), rtol=1e-4)
    with pytest.raises(ValueError, match="one learning rate per checkpoint"):
        I.tracin_self(loss, [p], [], x, y)


def test_proximal_fit_has_the_closed_form_of_ridge_regression():
    # Least squares: argmin (1/N) sum w_i (x_i.t - y_i)^2 / 2 + lam/2 |t|^2 + d/2 |t - t0|^2 is
    # (X^T W X / N + (lam + d) I)^-1 (X^T W y / N + d t0), whichever optimiser finds it.
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        x, y = rng.normal(size=(30, 4)), rng.normal(size=30)
        t0 = rng.normal(size=4)

        def sq(t, xb, yb):
            return 0.5 * (xb @ t - yb) ** 2

        w = I.removal_weights(30, [7])[0]
        for method in ("newton", "lbfgs"):
            r = I.fit(sq, t0, x, y, weight_decay=0.1, weights=w, proximal=0.5, method=method, tol=1e-11, maxiter=500)
            xw = x * w[:, None]
            truth = np.linalg.solve(xw.T @ x / 30 + 0.6 * np.eye(4), xw.T @ y / 30 + 0.5 * t0)
            np.testing.assert_allclose(np.asarray(r.params), truth, atol=1e-9)
    with pytest.raises(ValueError, match="proximal"):
        I.fit(sq, t0, x, y, proximal=-1.0)


def test_damped_influence_predicts_the_proximal_response_on_the_convex_model(convex):
    # Bae et al.: influence with damping d is the first-order proximal response, exactly checkable here
    params, train, (xt, yt) = convex
    with jax.enable_x64(True):
        test = (xt[:1], yt[:1])
        d = 1e-2
        res = I.influence(E.logistic_loss, params, train, test, weight_decay=WD, damping=d, solver="exact")
        top = np.argsort(-np.abs(np.asarray(res.removal[0])))[:10]
        prox = I.fit(E.logistic_loss, params, *train, weight_decay=WD, proximal=d, method="newton", tol=1e-13,
                     weights=I.removal_weights(len(train[1]), top))
        before = float(E.logistic_loss(params, *test)[0])
        actual = np.asarray(jax.vmap(lambda p: E.logistic_loss(p, *test)[0])(prox.params)) - before
        np.testing.assert_allclose(np.asarray(res.removal[0])[top], actual, rtol=0.02)
        # and it is not leave-one-out: the undamped prediction differs from it by more
        loo = I.influence(E.logistic_loss, params, train, test, weight_decay=WD, solver="exact")
        assert np.abs(np.asarray(loo.removal[0])[top] - actual).max() > 5 * np.abs(np.asarray(res.removal[0])[top] - actual).max()


def test_found_curve_and_flip_labels():
    scores = np.array([0.9, 0.1, 0.8, 0.3, 0.7])  # checked in the order 0, 2, 4, 3, 1
    np.testing.assert_allclose(E.found_curve(scores, [2, 1], fractions=[0, 0.2, 0.4, 0.8, 1.0]), [0, 0, 0.5, 0.5, 1.0])
    y = np.array([0, 1] * 50, np.float32)
    noisy, flipped = E.flip_labels(y, fraction=0.1, seed=3)
    assert len(flipped) == 10 and np.all(noisy[flipped] == 1 - y[flipped]) and (noisy != y).sum() == 10
    np.testing.assert_array_equal(E.flip_labels(y, fraction=0.1, seed=3)[1], flipped)  # seeded
    with pytest.raises(ValueError, match="fraction"):
        E.flip_labels(y, fraction=1.5, seed=0)


def test_mislabel_script_on_a_small_setting(tmp_path):
    out = tmp_path / "mis.npz"
    I.main(["--mislabel", "--small", "--out", str(out)])
    d = E.load_study(E.MISLABEL_FILE, out)
    assert str(d["config_command"]).startswith("python -m helpers.influence --mislabel --small")
    n = d["train_loss"].shape[1]
    assert d["flipped"].shape == (1, round(0.1 * n)) and d["self_influence"].shape == d["tracin_self"].shape == (1, n)
    assert float(d["grad_norm"][0]) < 1e-8 and np.all(d["self_influence"] >= 0) and np.all(d["tracin_self"] >= 0)


def test_shipped_mislabel_study_is_reproduced_where_cheap():
    """The flips are recomputed exactly, and the convex model's scores (Newton, float64) to
    1e-6: a deterministic fit to |grad| < 1e-10, so summation order moves them by rounding only."""
    d = E.load_study(E.MISLABEL_FILE)
    assert str(d["config_command"]) == "python -m helpers.influence --mislabel"
    tr = D.load_split("train")
    comp = np.asarray(E.composition_features(tr.x), np.float64)
    for s, seed in enumerate(d["config_flip_seeds"]):
        noisy, flipped = E.flip_labels(tr.y, fraction=float(d["config_fraction"]), seed=int(seed))
        np.testing.assert_array_equal(flipped, d["flipped"][s])
        if s == 0:
            with jax.enable_x64(True):
                fit = I.fit(E.logistic_loss, {"w": jnp.zeros(20), "b": jnp.zeros(())}, comp, noisy.astype(np.float64),
                            weight_decay=1e-3, method="newton", tol=1e-12)
                si = np.asarray(I.self_influence(E.logistic_loss, fit.params, comp, noisy.astype(np.float64), weight_decay=1e-3))
            np.testing.assert_allclose(si, d["convex_self_influence"][0], rtol=1e-6)


def test_shipped_damping_study_is_reproduced():
    """The shipped file's largest damping recomputed here: CG's
    prediction (relative residual < 1e-5) and one proximal retraining (L-BFGS to 1e-6).
    Tolerance 1 % of the effect, far above what a change of summation order moves them
    (the proximal term makes the problem well conditioned: d = 0.1 is ten times lambda)."""
    d = E.load_study(E.DAMPING_FILE)
    assert str(d["config_command"]) == "python -m helpers.influence --damping"
    assert np.all(d["prox_grad_norm"] < 1e-6)
    st = E.load_head_study()
    prob = E.head_problem()
    ti, j, damp = int(d["test_index"]), int(d["removed"][0]), float(d["config_dampings"][-1])
    test = (prob.feat_test[ti : ti + 1], prob.y_test[ti : ti + 1])
    res = I.influence(E.head_loss, st.params, (prob.feat_train, prob.y_train), test,
                      weight_decay=E.HEAD_SETTINGS["weight_decay"], damping=damp)
    np.testing.assert_allclose(float(res.removal[0, j]), d["predicted"][-1, 0], rtol=1e-2)
    n = len(prob.y_train)
    r = I.fit(E.head_loss, st.params, prob.feat_train, prob.y_train, weight_decay=E.HEAD_SETTINGS["weight_decay"],
              proximal=damp, weights=I.removal_weights(n, [j])[0].astype(np.float32), tol=1e-6, maxiter=200)
    actual = float(E.head_loss(r.params, *test)[0] - E.head_loss(st.params, *test)[0])
    np.testing.assert_allclose(actual, d["proximal"][-1, 0], rtol=1e-2)


def test_loo_script_small_reproduces_the_shipped_retrainings(tmp_path):
    """`--loo --small` reruns the shipped study's first two retrainings (the largest predicted
    effects on the worst error), same code path; predictions to CG's tolerance, effects to
    LOO_ACTUAL_RTOL of their size (L-BFGS to |grad R| < 1e-6 from the same minimum)."""
    d = E.load_study(E.LOO_FILE)
    assert str(d["config_command"]) == "python -m helpers.influence --loo"
    assert np.all(d["grad_norm"] < 1e-6) and len(d["actual"]) == 2 * (int(d["config_largest"]) + int(d["config_random"]))
    out = tmp_path / "loo.npz"
    I.main(["--loo", "--small", "--out", str(out)])
    s = E.load_study(E.LOO_FILE, out)
    assert list(s["job"]) == ["worst error"] * 3 and list(s["chosen"]) == ["largest", "largest", "random"]
    ship = (d["job"] == "worst error") & (d["chosen"] == "largest")
    np.testing.assert_array_equal(s["removed"][:2], d["removed"][ship][:2])
    np.testing.assert_array_equal(s["test_index"], d["test_index"][ship][0])
    np.testing.assert_allclose(s["predicted"][:2], d["predicted"][ship][:2], rtol=1e-3)
    np.testing.assert_allclose(s["actual"][:2], d["actual"][ship][:2], rtol=E.LOO_ACTUAL_RTOL)
    assert np.all(s["grad_norm"] < 1e-6)


# ----------------------------------------------------------------------------- the whole CNN (helpers.influence_cnn)


def test_damped_influence_predicts_the_tilted_proximal_response():
    """The ground truth of helpers.influence_cnn on a model small enough to check: the
    non-convex tanh MLP away from any minimum (so the tilt matters), float64. Damped influence
    (H + d I)^-1 by an exact solve against the tilted proximal retraining without one example:
    first order in 1/N, so they agree to a few per cent at N = 400; without the tilt the fit would follow
    grad R (|grad R| >> the removal's pull) and the difference would be meaningless."""
    from helpers import influence_cnn as C

    loss, p, _, _ = _mlp()
    with jax.enable_x64(True):
        p = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), p)
        kx, ky = jax.random.split(jax.random.PRNGKey(1))
        x = jax.random.normal(kx, (400, 2), jnp.float64)  # N = 400: with N = 40 the second-order
        y = (jax.random.uniform(ky, (400,)) < 0.5).astype(jnp.float64)  # term was 9% of the effect
        n, d, wd = x.shape[0], 1.0, 0.1
        objective, theta, _ = I.make_objective(loss, p, x, y, weight_decay=wd)
        assert float(jnp.linalg.norm(jax.grad(objective)(theta, jnp.ones(n)))) > 1e-2  # not a minimum
        h = np.asarray(I.exact_hessian(loss, p, x, y, weight_decay=wd))
        assert np.linalg.eigvalsh(h)[0] + d > 0
        xt, yt = x[:1] * 0.5, y[:1]
        g = np.asarray(I.per_example_grads(loss, p, xt, yt)[0])
        s = np.linalg.solve(h + d * np.eye(len(h)), g)
        pred = np.asarray(I.directional_derivatives(loss, p, x, y, jnp.asarray(s))) / n  # [N]
        for j in np.argsort(-np.abs(pred))[:3]:
            fit = C.tilted_fit(loss, p, x, y, removed=int(j), weight_decay=wd, damping=d, rtol=1e-8)
            assert fit.rel_grad < 1e-8 and fit.converged
            actual = float(loss(fit.params, xt, yt)[0] - loss(p, xt, yt)[0])
            assert abs(actual - pred[j]) < 0.05 * abs(pred[j])
            # the loop on the host (what the whole CNN needs) reaches the same refit
            host = C.tilted_fit(loss, p, x, y, removed=int(j), weight_decay=wd, damping=d, rtol=1e-8, loop="host")
            assert host.converged
            assert abs(float(loss(host.params, xt, yt)[0] - loss(p, xt, yt)[0]) - actual) < 1e-3 * abs(actual)
        with pytest.raises(ValueError, match="removed"):
            C.tilted_fit(loss, p, x, y, removed=n, weight_decay=wd, damping=d)
        seen = []
        fit = C.tilted_fit(loss, p, x, y, removed=0, weight_decay=wd, damping=d, maxiter=5, loop="host",
                           on_step=lambda k, q: seen.append((k, jax.tree.structure(q) == jax.tree.structure(p))))
        assert seen == [(k, True) for k in range(1, fit.iterations + 1)]  # unravelled parameters, every step
        with pytest.raises(ValueError, match="on_step needs loop='host'"):
            C.tilted_fit(loss, p, x, y, removed=0, weight_decay=wd, damping=d, on_step=print)
        with pytest.raises(TypeError, match="on_step"):
            C.tilted_fit(loss, p, x, y, removed=0, weight_decay=wd, damping=d, loop="host", on_step=3)
        # an example the loss does not depend on (zero input: tanh(0) = 0, no gradient) has no pull
        x0 = x.at[5].set(0.0)
        for lp in ("device", "host"):
            with pytest.raises(ValueError, match="zero loss gradient"):
                C.tilted_fit(loss, p, x0, y, removed=5, weight_decay=wd, damping=d, loop=lp)


def test_cnn_logit_is_the_prediction():
    from helpers import influence_cnn as C

    params, _ = M.load_pretrained()
    te = D.load_split("test")
    x = jnp.asarray(te.x[:3])
    np.testing.assert_array_equal(np.asarray(C.cnn_logit(params, x, None)), np.asarray(M.make_model().apply(params, x)))
    np.testing.assert_allclose(np.asarray(C.cnn_loss(params, x, jnp.asarray(te.y[:3], jnp.float32))),
                               np.asarray(optax.sigmoid_binary_cross_entropy(M.make_model().apply(params, x), te.y[:3])),
                               rtol=1e-6)


@pytest.mark.skipif(not (M.pretrained_dir() / "influence_cnn.npz").exists(),
                    reason="influence_cnn.npz not shipped yet: run `python -m helpers.influence_cnn`")
def test_shipped_cnn_study_is_consistent():
    """The shipped whole-CNN study: its recorded command and settings, its test peptide (the
    CNN's worst test error, recomputed here), and its damped solves (relative residual below
    the CG tolerance, no negative curvature at any shipped damping), its predictions for the
    removed peptides and |grad R| at the shipped parameters, recomputed."""
    from helpers import influence_cnn as C

    d = C.load()
    assert str(d["config_command"]) == "python -m helpers.influence_cnn" and int(d["config_seed"]) == 0
    assert tuple(d["config_dampings"]) == C.DAMPINGS and float(d["config_weight_decay"]) == C.WEIGHT_DECAY
    te = D.load_split("test")
    params, _ = M.load_pretrained()
    losses = np.concatenate([np.asarray(C.cnn_loss(params, jnp.asarray(te.x[i:i + 512]), jnp.asarray(te.y[i:i + 512], jnp.float32)))
                             for i in range(0, len(te.y), 512)])
    assert int(d["test_index"]) == int(np.argmax(losses))
    assert np.all(d["cg_residual"] <= float(d["config_cg_tol"])) and not d["cg_negative_curvature"].any()
    assert d["predicted"].shape == d["actual"].shape == (len(C.DAMPINGS), 2, len(d["removed"]))
    # Lanczos proved negative curvature, undamped CG met it, and every damping is beyond it
    assert d["ritz_values"][0] < 0 and bool(d["undamped_negative_curvature"])
    assert min(C.DAMPINGS) > -d["ritz_values"][0]
    # the path's last point is the recorded retraining; the removals are the largest predicted
    # effects at the first damping, then random ones from the rest
    k = d["fit_iterations"]  # [D, R]
    assert k.min() >= 1
    last = np.take_along_axis(d["fit_path"], (k - 1)[:, :, None, None], axis=2)[:, :, 0, :]  # [D, R, 2]
    np.testing.assert_allclose(last.transpose(0, 2, 1), d["actual"], rtol=1e-5, atol=1e-7)
    n_large = int(np.sum(d["chosen"] == "largest"))
    order = np.argsort(-np.abs(d["removal"][0, 0]))
    assert set(d["removed"][:n_large]) == set(order[:n_large]) and not set(d["removed"][n_large:]) & set(order[:n_large])
    # the predicted effects and the gradient similarities, recomputed for the removed peptides
    x, y = jnp.asarray(D.load_split("train").x), jnp.asarray(D.load_split("train").y, jnp.float32)
    ti = int(d["test_index"])
    g = np.asarray(C.test_gradients(params, jnp.asarray(te.x[ti:ti + 1]), jnp.asarray(te.y[ti:ti + 1], jnp.float32)))
    gi = np.asarray(I.per_example_grads(C.cnn_loss, params, x[d["removed"]], y[d["removed"]]))  # [R, P]
    n = x.shape[0]
    np.testing.assert_allclose(gi @ g.T / n, d["gradient_dot"][:, d["removed"]].T, rtol=2e-3, atol=1e-7)
    for a in range(len(C.DAMPINGS)):
        np.testing.assert_allclose(gi @ d["s"][a].T / n, d["predicted"][a].T, rtol=2e-3, atol=1e-7)
    # |grad R| at the shipped parameters (chapter 9 quotes the file's)
    objective = I.make_objective(C.cnn_loss, params, x, y, weight_decay=C.WEIGHT_DECAY)[0]
    grad_r = jax.grad(objective)(I.flatten(params)[0], jnp.ones(n))
    np.testing.assert_allclose(float(jnp.linalg.norm(grad_r)), float(d["grad_norm"]), rtol=1e-3)


@pytest.mark.slow
def test_cnn_study_script_on_a_small_setting(tmp_path):
    """`python -m helpers.influence_cnn --small` (`C.SMALL`: 200 training peptides, damping 5,
    one largest and one random removal): the damped prediction tracks the tilted proximal
    retraining it estimates for the largest removal (a within-30% check, first order in 1/N on
    a small set), and the command recorded is the settings' (`--out` left out)."""
    from helpers import influence_cnn as C

    out = tmp_path / "cnn.npz"
    C.main(["--small", "--out", str(out)])
    d = C.load(out)
    assert str(d["config_command"]) == "python -m helpers.influence_cnn --small"
    assert int(d["config_n_train"]) == C.SMALL["n_train"] and tuple(d["config_dampings"]) == C.SMALL["dampings"]
    assert not d["cg_negative_curvature"].any() and d["ritz_values"][0] < 0 < C.SMALL["dampings"][0] + d["ritz_values"][0]
    assert d["fit_path"].shape == (1, 2, C.SMALL["fit_maxiter"], 2)
    pred, act = d["predicted"][-1], d["actual"][-1]  # [2, R] at the (only) damping
    np.testing.assert_allclose(pred[:, 0], act[:, 0], rtol=0.3)  # the largest removal


def test_predicted_vs_actual_plot():
    """`plots.predicted_vs_actual`: one scatter per group, the diagonal on equal limits that
    hold every point, and clear errors for mismatched, non-finite or empty groups."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from helpers import plots

    ax = plots.predicted_vs_actual({"a": ([0.1, -0.2], [0.12, -0.3]), "b": ([0.05], [0.04])}, markers={"b": "x"})
    assert len(ax.collections) == 2 and ax.get_xlim() == ax.get_ylim() and ax.get_xlim()[1] >= 0.3
    plt.close("all")
    with pytest.raises(ValueError, match="group 'a'"):
        plots.predicted_vs_actual({"a": ([0.1, 0.2], [0.1])})
    with pytest.raises(ValueError, match="group 'a' holds NaN"):
        plots.predicted_vs_actual({"a": ([0.1, np.nan], [0.1, 0.2])})
    with pytest.raises(ValueError, match="non-empty dict"):
        plots.predicted_vs_actual({})
    with pytest.raises(TypeError, match="markers"):
        plots.predicted_vs_actual({"a": ([0.1], [0.1])}, markers="x")
    plt.close("all")
