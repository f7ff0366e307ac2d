"""Tree regularisation building blocks: the parabola task, average path length against a
hand count and an independent traversal, the mimic tree, the weight surrogate, training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.tree import DecisionTreeClassifier

from helpers import treereg as T


def test_parabola_data_flips_only_near_the_boundary():
    d = T.parabola_data(500, seed=3)
    assert d.x_train.shape == (350, 2) and d.x_test.shape == (150, 2)
    assert d.flipped_train.sum() + d.flipped_test.sum() == 50
    for x, y, flipped in ((d.x_train, d.y_train, d.flipped_train), (d.x_test, d.y_test, d.flipped_test)):
        assert np.all((x >= 0) & (x <= 1))
        gap = x[:, 1] - T.parabola_boundary(x[:, 0])
        np.testing.assert_array_equal(y[~flipped], gap[~flipped] > 0)
        np.testing.assert_array_equal(y[flipped], gap[flipped] <= 0)
        assert np.all(np.abs(gap[flipped]) < 0.2)
    again = T.parabola_data(500, seed=3)
    np.testing.assert_array_equal(again.x_train, d.x_train)
    with pytest.raises(ValueError, match="widen the band"):
        T.parabola_data(500, seed=0, band=0.001)


def test_average_path_length_by_hand():
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    stump = DecisionTreeClassifier().fit(x, [0, 0, 1, 1])
    assert T.average_path_length(stump, x) == 1.0  # one question for everyone
    # Labels 0 1 1 0: one end is split off (1 question), the other three need 2 questions.
    two = DecisionTreeClassifier(random_state=0).fit(x, [0, 1, 1, 0])
    assert T.average_path_length(two, x) == pytest.approx((1 + 2 + 2 + 2) / 4)
    leaf = DecisionTreeClassifier().fit(x, [1, 1, 1, 1])
    assert T.average_path_length(leaf, x) == 0.0


def test_average_path_length_matches_a_traversal():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(300, 2))
    tree = DecisionTreeClassifier(min_samples_leaf=5, random_state=0).fit(x, x[:, 0] + x[:, 1] ** 2 > 0.8)
    t = tree.tree_
    depths = []
    for row in x:  # walk from the root, counting the questions
        node, d = 0, 0
        while t.children_left[node] != -1:
            node = t.children_left[node] if row[t.feature[node]] <= t.threshold[node] else t.children_right[node]
            d += 1
        depths.append(d)
    assert T.average_path_length(tree, x) == pytest.approx(np.mean(depths))
    with pytest.raises(ValueError, match=r"\[B, D\]"):
        T.average_path_length(tree, np.zeros(3))


def test_mimic_tree_and_fidelity():
    x = np.random.default_rng(1).uniform(size=(400, 2))
    labels = x[:, 0] > 0.5
    tree = T.mimic_tree(x, labels, min_samples_leaf=5)
    assert T.fidelity(tree, x, labels) == 1.0
    assert T.average_path_length(tree, x) == 1.0
    assert T.fidelity(tree, x, ~labels) == 0.0


def test_weight_penalty_counts_weights_not_biases():
    model = T.make_mlp((4, 3))
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 2)))
    ws = [v["w"] for v in params.values()]
    assert float(T.weight_penalty(params, "l1")) == pytest.approx(sum(float(jnp.abs(w).sum()) for w in ws), rel=1e-6)
    assert float(T.weight_penalty(params, "l2")) == pytest.approx(sum(float((w**2).sum()) for w in ws), rel=1e-6)
    with pytest.raises(ValueError, match="'l1' or 'l2'"):
        T.weight_penalty(params, "l3")


def test_surrogate_learns_a_function_of_the_weights():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((300, 40)).astype(np.float32)
    apl = 3 + w[:, :5].sum(axis=1) * 0.3 + 0.05 * rng.standard_normal(300)
    s = T.fit_surrogate(w[:200], apl[:200], key=jax.random.PRNGKey(0), steps=2000, learning_rate=1e-2)
    held_out = np.asarray(T.surrogate_apl(s, jnp.asarray(w[200:])))
    assert np.corrcoef(held_out, apl[200:])[0, 1] > 0.8
    g = jax.grad(lambda v: T.surrogate_apl(s, v))(jnp.asarray(w[0]))  # differentiable
    assert g.shape == (40,) and float(jnp.abs(g[:5]).mean()) > float(jnp.abs(g[5:]).mean())
    with pytest.raises(ValueError, match="M >= 2"):
        T.fit_surrogate(w[:1], apl[:1], key=jax.random.PRNGKey(0))


def test_training_with_each_regulariser():
    d = T.parabola_data(200, seed=0)
    model = T.make_mlp((16, 16))
    runs = {
        (reg, st): T.train_regularised(d.x_train, d.y_train, regulariser=reg, strength=st, key=jax.random.PRNGKey(0),
                                       model=model, steps=100, retrain_every=25, pairs_per_chunk=3, min_samples_leaf=5)
        for reg, st in (("none", 0.0), ("l2", 0.1), ("l1", 0.0), ("tree", 0.1))
    }
    norm = {k: float(T.weight_penalty(r.params, "l2")) for k, r in runs.items()}
    assert norm[("l2", 0.1)] < 0.5 * norm[("none", 0.0)]
    # Strength 0 is the unregularised objective, whatever the penalty.
    np.testing.assert_allclose(norm[("l1", 0.0)], norm[("none", 0.0)], rtol=1e-5)
    tree = runs[("tree", 0.1)]
    w, apl = tree.pairs
    assert w.shape[0] == apl.shape[0] == 4 * 3 and np.all(apl >= 0)
    assert len(tree.history["apl"]) == 4 and np.isnan(tree.history["apl_surrogate"][0])
    assert np.all(np.isfinite(tree.history["apl_surrogate"][1:]))
    ev = T.evaluate(model, runs[("none", 0.0)].params, d, min_samples_leaf=5)
    assert 0.5 < ev.test_auc <= 1 and 0 <= ev.fidelity <= 1 and ev.apl > 0
    with pytest.raises(ValueError, match="regulariser must be one of"):
        T.train_regularised(d.x_train, d.y_train, regulariser="dropout", strength=1.0, key=jax.random.PRNGKey(0))


def test_padded_surrogate_fit_ignores_the_padding():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((30, 12)).astype(np.float32)
    apl = 2 + w[:, 0] + 0.1 * rng.standard_normal(30)
    plain = T.fit_surrogate(w, apl, key=jax.random.PRNGKey(0), steps=200)
    padded = T.fit_surrogate(w, apl, key=jax.random.PRNGKey(0), steps=200, pad_to=64)
    np.testing.assert_allclose(T.surrogate_apl(plain, jnp.asarray(w)), T.surrogate_apl(padded, jnp.asarray(w)), rtol=1e-4, atol=1e-4)
    # The softplus output never predicts a negative APL, however far the weights move.
    assert float(T.surrogate_apl(plain, jnp.asarray(w[0] * 1e3))) >= 0
    assert float(T.surrogate_apl(plain, jnp.asarray(-w[0] * 1e3))) >= 0


def test_sweep_script_on_a_small_setting(tmp_path):
    out = tmp_path / "sweep.npz"
    T.main(["--small", "--steps", "50", "--out", str(out)])
    sw = T.load_sweep(out)
    assert list(sw["regulariser"]) == ["none", "l1", "l2", "tree"] and int(sw["config_steps"]) == 50
    assert sw["grid"].shape == (4, 11, 11) and np.all((sw["grid"] >= 0) & (sw["grid"] <= 1))
    assert np.all((sw["test_auc"] >= 0) & (sw["test_auc"] <= 1)) and np.all(sw["apl"] >= 0)
    # One tree run of 2 chunks: two true APLs, the first without a surrogate forecast.
    np.testing.assert_array_equal(sw["track_run"], [3, 3])
    np.testing.assert_array_equal(sw["track_step"], [25, 50])
    assert np.isnan(sw["track_surrogate"][0]) and np.isfinite(sw["track_surrogate"][1])
    np.testing.assert_array_equal(sw["dt_depth"], [1, 2])
    assert sw["dt_apl"][0] == 1.0 and sw["dt_apl"][1] <= 2.0


def test_shipped_sweep_comes_from_the_script():
    sw = T.load_sweep()
    seeds = tuple(int(s) for s in sw["config_seeds"])
    expected = [(r, s, seed) for r, values in T.SWEEP_STRENGTHS.items() for s in values for seed in seeds]
    assert list(zip(sw["regulariser"], sw["strength"], sw["seed"], strict=True)) == expected
    assert (int(sw["config_steps"]), tuple(sw["config_hidden"]), int(sw["config_n"])) == (1500, (100, 100, 10), 500)
    tree_rows = np.flatnonzero(sw["regulariser"] == "tree")
    np.testing.assert_array_equal(np.unique(sw["track_run"]), tree_rows)
    assert len(sw["track_apl"]) == len(tree_rows) * 1500 // 25
    np.testing.assert_array_equal(sw["dt_depth"], T.TREE_DEPTHS)
    # Re-running one shipped setting through the script's code reproduces it.
    i = expected.index(("l2", 3e-3, 0))
    row, _ = T.sweep_run(T.parabola_data(500, seed=int(sw["config_data_seed"])), regulariser="l2", strength=3e-3, seed=0)
    assert row["test_auc"] == pytest.approx(sw["test_auc"][i], abs=1e-3)
    assert row["apl"] == pytest.approx(sw["apl"][i], abs=0.1)
    np.testing.assert_allclose(row["grid"].astype(float), sw["grid"][i].astype(float), atol=0.02)
