"""Tree regularisation building blocks: the parabola task, average path length against a
hand count and an independent traversal, the mimic tree, the weight surrogate, training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from sklearn.tree import DecisionTreeClassifier

from helpers import treereg as T


def test_treereg_reexports_both_modules_and_keeps_its_command_line():
    """helpers.treereg is split by responsibility (issue 18: modules under ~600 lines) into
    treereg_model and treereg_study; every public name stays importable from helpers.treereg,
    as the same object, and `python -m helpers.treereg` still parses its options."""
    import subprocess
    import sys
    import types
    from pathlib import Path

    from helpers import treereg_model, treereg_study

    for module in (treereg_model, treereg_study):
        own = [n for n, v in vars(module).items() if not n.startswith("_") and not isinstance(v, types.ModuleType)
               and getattr(v, "__module__", module.__name__) == module.__name__]
        assert own, module.__name__
        for name in own:
            assert getattr(T, name) is getattr(module, name), name
            assert name in T.__all__, name
    assert T._chunk is treereg_model._chunk  # chapter 12's by-hand step calls it
    root = Path(__file__).resolve().parents[1]
    for module in ("treereg", "treereg_model", "treereg_study"):
        assert len((root / "helpers" / f"{module}.py").read_text().splitlines()) < 600, module
    done = subprocess.run([sys.executable, "-m", "helpers.treereg", "--help"], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0 and "--live" in done.stdout and "--spread" in done.stdout


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
    i = expected.index(("l2", 3e-3, 0))
    # Re-running one shipped setting through the script's code lands within the spread a
    # rounding-size change produces (another machine sums in another order).
    row, _ = T.sweep_run(T.parabola_data(500, seed=int(sw["config_data_seed"])), regulariser="l2", strength=3e-3, seed=0)
    spread = T.load_sweep(name=T.SPREAD_FILE)
    for metric in ("test_auc", "apl", "fidelity"):
        lo, hi = T.rerun_band(spread, "l2", 3e-3, metric)
        assert lo <= row[metric] <= hi, (metric, row[metric], lo, hi, sw[metric][i])
    np.testing.assert_allclose(row["grid"].astype(float), sw["grid"][i].astype(float), atol=0.02)


def test_jitter_moves_the_start_by_a_rounding_step():
    params = T.make_mlp((8,)).init(jax.random.PRNGKey(0), jnp.zeros((1, 2)))
    moved = T.jitter_params(params, 1e-7, key=jax.random.PRNGKey(1))
    flat, flat_moved = (np.asarray(ravel_pytree(p)[0]) for p in (params, moved))
    nonzero = flat != 0
    rel = np.abs(flat_moved - flat)[nonzero] / np.abs(flat[nonzero])
    assert rel.max() < 1e-6 and (rel > 0).any()  # some weights move, by about one float32 step
    np.testing.assert_array_equal(flat_moved[~nonzero], 0.0)  # zero biases stay zero
    again = T.jitter_params(params, 1e-7, key=jax.random.PRNGKey(1))
    np.testing.assert_array_equal(np.asarray(ravel_pytree(again)[0]), flat_moved)
    d = T.parabola_data(100, seed=0)
    with pytest.raises(ValueError, match="jitter"):
        T.train_regularised(d.x_train, d.y_train, regulariser="l2", strength=1e-3, key=jax.random.PRNGKey(0), jitter=-1e-7)


def test_spread_script_on_a_small_setting(tmp_path):
    out = tmp_path / "spread.npz"
    T.main(["--spread", "--small", "--reruns", "2", "--steps", "50", "--out", str(out)])
    sp = T.load_sweep(out)
    assert list(sp["spread_regulariser"]) == ["tree"] and list(sp["spread_strength"]) == [3.0]
    assert sp["spread_apl_reruns"].shape == sp["spread_test_auc_reruns"].shape == (1, 2)
    assert float(sp["spread_jitter"]) == 1e-7 and int(sp["spread_steps"]) == 50
    # The unjittered run is the plain run of the same setting.
    row, _ = T.sweep_run(T.parabola_data(500, seed=0), regulariser="tree", strength=3.0, seed=0, hidden=(16, 16),
                         steps=50, grid_n=2)
    assert row["test_auc"] == sp["spread_test_auc"][0] and row["apl"] == sp["spread_apl"][0]
    with pytest.raises(ValueError, match="reruns"):
        T.rerun_spread(reruns=1)


def test_shipped_spread_belongs_to_the_shipped_sweep():
    sp, sw = T.load_sweep(name=T.SPREAD_FILE), T.load_sweep()
    settings = list(zip(sp["spread_regulariser"], sp["spread_strength"], sp["spread_seed"], strict=True))
    assert settings == [(r, pytest.approx(s), seed) for r, s, seed in T.SPREAD_SETTINGS]
    assert int(sp["spread_steps"]) == int(sw["config_steps"]) and tuple(sp["spread_hidden"]) == tuple(sw["config_hidden"])
    for i, (r, s, seed) in enumerate(settings):
        j = np.flatnonzero((sw["regulariser"] == r) & np.isclose(sw["strength"], s) & (sw["seed"] == seed))
        assert len(j) == 1  # made by the same code on the same machine: the same run
        assert sp["spread_test_auc"][i] == sw["test_auc"][j[0]] and sp["spread_apl"][i] == sw["apl"][j[0]]
    assert sp["spread_apl_reruns"].shape[1] >= 16


def test_rerun_band_widens_the_measured_range():
    sp = {"spread_regulariser": np.array(["tree"]), "spread_strength": np.array([3.0]), "spread_seed": np.array([0]),
          "spread_apl": np.array([3.0]), "spread_apl_reruns": np.array([[2.8, 3.2]])}
    lo, hi = T.rerun_band(sp, "tree", 3.0, "apl")
    assert lo == pytest.approx(2.8 - 0.2 - 1 / 350) and hi == pytest.approx(3.2 + 0.2 + 1 / 350)
    with pytest.raises(ValueError, match="no spread measured"):
        T.rerun_band(sp, "l2", 3.0, "apl")
    with pytest.raises(ValueError, match="metric"):
        T.rerun_band(sp, "tree", 3.0, "loss")


# ----------------------------------------------------------------------------- the stored live run (chapter 12)


def test_live_script_on_a_small_setting(tmp_path):
    out = tmp_path / "live.npz"
    T.main(["--live", "--small", "--steps", "50", "--out", str(out)])
    model = T.make_mlp((16, 16))
    run = T.load_live_run(model, out)
    assert (run.regulariser, run.strength) == ("tree", 3.0) and len(run.pairs[1]) == 2 * 5
    np.testing.assert_array_equal(run.history["step"], [25, 50])
    assert np.isnan(run.history["apl_surrogate"][0]) and np.isfinite(run.history["apl_surrogate"][1])
    # The stored weights are the script's run: the same code on the same machine retrains them
    # exactly, and the stored numbers are theirs.
    d = T.parabola_data(500, seed=0)
    again = T.train_regularised(d.x_train, d.y_train, regulariser="tree", strength=3.0, key=jax.random.PRNGKey(0),
                                model=model, steps=50)
    np.testing.assert_array_equal(ravel_pytree(run.params)[0], ravel_pytree(again.params)[0])
    live, ev = T.load_sweep(out), T.evaluate(model, run.params, d)
    assert (ev.test_auc, ev.apl, ev.fidelity) == (live["final_test_auc"], live["final_apl"], live["final_fidelity"])
    assert str(live["config_command"]) == "python -m helpers.treereg --live --small --steps 50"
    with pytest.raises(ValueError, match="model must be"):
        T.load_live_run(T.make_mlp((8,)), out)


def test_shipped_live_run_lies_within_the_rerun_spread():
    live, spread = T.load_sweep(name=T.LIVE_FILE), T.load_sweep(name=T.SPREAD_FILE)
    setting = (str(live["config_regulariser"]), float(live["config_strength"]), int(live["config_seed"]))
    assert setting in T.SPREAD_SETTINGS and setting[0] == "tree"
    assert (int(live["config_steps"]), tuple(live["config_hidden"])) == (int(spread["spread_steps"]), tuple(spread["spread_hidden"]))
    model = T.make_mlp(tuple(int(h) for h in live["config_hidden"]))
    run = T.load_live_run(model)
    assert len(run.history["apl"]) == int(live["config_steps"]) // 25 and len(run.pairs[1]) == 5 * len(run.history["apl"])
    d = T.parabola_data(int(live["config_n"]), seed=int(live["config_data_seed"]))
    ev = T.evaluate(model, run.params, d)
    for metric in ("test_auc", "apl", "fidelity"):
        lo, hi = T.rerun_band(spread, setting[0], setting[1], metric)  # where a rerun on any machine may land
        stored = float(live[f"final_{metric}"])
        assert lo <= stored <= hi, (metric, stored, lo, hi)
        assert abs(getattr(ev, metric) - stored) <= 2 * T.BAND_FLOOR[metric]  # its weights give its numbers
    # A small version of the same code path: the first chunk (25 steps, no penalty yet) retrained
    # here is the stored run's first chunk (the training becomes chaotic only later).
    start = T.train_regularised(d.x_train, d.y_train, regulariser="tree", strength=setting[1],
                                key=jax.random.PRNGKey(setting[2]), model=model, steps=25)
    assert start.history["apl"][0] == pytest.approx(run.history["apl"][0], abs=1e-9)
    assert start.history["loss"][0] == pytest.approx(run.history["loss"][0], rel=1e-4)


# ----------------------------------------------------------------------------- the extra runs (chapter 12)


def test_extra_script_on_a_small_setting(tmp_path):
    out = tmp_path / "extra.npz"
    T.main(["--extra", "--small", "--steps", "50", "--out", str(out)])
    ex = T.load_sweep(out)
    assert list(ex["extra_regulariser"]) == ["l2"] and ex["extra_test_logits"].shape == (1, 150)
    # the stored AUC is the AUC of the stored logits
    from helpers import metrics

    assert ex["extra_test_auc"][0] == pytest.approx(metrics.auroc(ex["extra_y_test"], ex["extra_test_logits"][0]))
    np.testing.assert_array_equal(ex["extra_y_test"], T.parabola_data(500, seed=0).y_test)
    assert str(ex["config_command"]) == "python -m helpers.treereg --extra --small --steps 50 --seeds 3"


def test_shipped_extra_l2_comes_from_the_script():
    """The shipped finer L2 grid (chapter 12's low-APL verdict rests on it): its layout and
    command, and one of its runs retrained through the script's code, L2 0.008 seed 0."""
    ex = T.load_sweep(name=T.EXTRA_L2_FILE)
    assert str(ex["config_command"]) == "python -m helpers.treereg --extra --l2-only --steps 1500 --seeds 3"
    seeds = tuple(int(s) for s in ex["extra_seeds"])
    expected = [("l2", s, seed) for s in T.EXTRA_L2_STRENGTHS for seed in seeds]
    assert list(zip(ex["extra_regulariser"], ex["extra_strength"], ex["extra_seed"], strict=True)) == expected
    assert (int(ex["extra_steps"]), tuple(ex["extra_hidden"]), int(ex["extra_data_seed"])) == (1500, (100, 100, 10), 0)
    # The grid's ends are sweep settings: the same networks (within one training path one question longer).
    sw = T.load_sweep()
    for s in (T.EXTRA_L2_STRENGTHS[0], T.EXTRA_L2_STRENGTHS[-1]):
        a = np.flatnonzero((sw["regulariser"] == "l2") & np.isclose(sw["strength"], s))
        b = np.flatnonzero(np.isclose(ex["extra_strength"], s))
        assert np.abs(sw["apl"][a] - ex["extra_apl"][b]).max() <= T.BAND_FLOOR["apl"] + 1e-9
    # Retrain L2 0.008 seed 0 (about 2 CPU s after compiling). L2 at 0.003 forgets rounding steps (the spread file);
    # at 0.008 the seeds land at two APLs, so the rerun must land at one of its setting's seeds' APLs, below the
    # threshold of chapter 12, and reach the stored AUC within the AUC floor.
    out = T.extra_runs(strengths={"l2": (8e-3,)}, seeds=(0,))
    i = expected.index(("l2", 8e-3, 0))
    same = ex["extra_apl"][np.isclose(ex["extra_strength"], 8e-3)]
    assert np.abs(out["extra_apl"][0] - same).min() <= T.BAND_FLOOR["apl"] + 1e-9, (out["extra_apl"][0], same)
    assert abs(out["extra_test_auc"][0] - ex["extra_test_auc"][i]) < T.BAND_FLOOR["test_auc"]
    data = T.parabola_data(500, seed=0)
    y_true = (data.x_train[:, 1] > T.parabola_boundary(data.x_train[:, 0])).astype(int)
    assert out["extra_apl"][0] < T.average_path_length(T.mimic_tree(data.x_train, y_true), data.x_train)


# ----------------------------------------------------------------------------- the real task (helpers.treereg_real)


def test_axis_alignment_by_hand():
    from helpers import treereg_real as R

    a = R.axis_alignment(np.array([[0.0, 3.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, -2.0, 0.0]]))
    np.testing.assert_allclose(a[[0, 1, 3]], [1.0, 1 / 3, 4 / 5])
    assert np.isnan(a[2])
    # In 2 dimensions a uniformly random direction scores E max(cos², sin²) = 1/2 + 1/pi exactly.
    assert R.isotropic_alignment(2, samples=200_000) == pytest.approx(0.5 + 1 / np.pi, abs=2e-3)
    assert R.isotropic_alignment(1) == 1.0
    with pytest.raises(ValueError, match="grads"):
        R.axis_alignment(np.zeros(3))
    with pytest.raises(ValueError, match="d must"):
        R.isotropic_alignment(0)


def test_input_gradients_match_finite_differences():
    from helpers import treereg_real as R

    model = T.make_mlp((6,))
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 3)))
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float64)
    g = R.input_gradients(model, params, x)
    f = lambda v: np.asarray(model.apply(params, jnp.asarray(v, jnp.float32)), np.float64)  # noqa: E731
    h = 1e-2
    fd = np.stack([(f(x + h * np.eye(3)[j]) - f(x - h * np.eye(3)[j])) / (2 * h) for j in range(3)], axis=1)
    np.testing.assert_allclose(g, fd, atol=2e-3)


def test_descriptor_inputs_take_the_log_length():
    from helpers import treereg_real as R

    d = np.ones((2, 8))
    d[:, 0] = [10.0, 100.0]
    np.testing.assert_allclose(R.descriptor_inputs(d)[:, 0], np.log([10.0, 100.0]))
    with pytest.raises(ValueError, match=r"\[B, 8\]"):
        R.descriptor_inputs(np.ones((2, 7)))
    d[0, 0] = 0
    with pytest.raises(ValueError, match="length"):
        R.descriptor_inputs(d)


def test_real_script_on_a_small_setting(tmp_path):
    from helpers import treereg_real as R

    out = tmp_path / "real.npz"
    R.main(["--small", "--steps", "50", "--out", str(out)])
    rs = T.load_sweep(out)
    assert list(rs["regulariser"]) == ["none", "l2", "tree"] and int(rs["config_steps"]) == 50
    assert rs["logits"].shape == (3, len(rs["y_test"]))
    assert np.all((rs["alignment"] >= 1 / 8 - 1e-9) & (rs["alignment"] <= 1 + 1e-9))
    assert np.all((rs["fidelity"] >= 0) & (rs["fidelity"] <= 1)) and np.all(rs["apl"] >= 0)
    np.testing.assert_array_equal(rs["dt_depth"], [1, 2])
    assert rs["dt_apl"][0] == 1.0
    assert "--small" in str(rs["config_command"])


def test_shipped_real_sweep_comes_from_the_script():
    from helpers import treereg_real as R

    rs = T.load_sweep(name=R.REAL_FILE)
    seeds = tuple(int(s) for s in rs["config_seeds"])
    expected = [(r, s, seed) for r, values in R.REAL_STRENGTHS.items() for s in values for seed in seeds]
    assert list(zip(rs["regulariser"], rs["strength"], rs["seed"], strict=True)) == expected
    assert (int(rs["config_steps"]), tuple(rs["config_hidden"])) == (R.REAL_STEPS, R.REAL_HIDDEN)
    from helpers import metrics

    for i in (0, len(expected) - 1):  # stored AUROCs are those of the stored logits
        assert rs["test_auc"][i] == pytest.approx(metrics.auroc(rs["y_test"], rs["logits"][i]))
    # Rerun the headline L2 setting (3e-3, seed 0) through the script's code: it must land on the
    # stored seed 0 within the spread of that setting's seeds (floors 0.001 AUROC, 0.05 questions,
    # 0.005 fidelity), and its test logits must be closer to the stored seed 0's than any two
    # stored seeds are to each other.
    data = R.real_data()
    np.testing.assert_array_equal(data.y_test, rs["y_test"])
    strength = R.REAL_STRENGTHS["l2"][-1]
    row = R.real_run(data, regulariser="l2", strength=strength, seed=0)
    same = np.flatnonzero((rs["regulariser"] == "l2") & np.isclose(rs["strength"], strength))
    assert int(rs["seed"][same[0]]) == 0
    for metric, floor in (("test_auc", 0.001), ("apl", 0.05), ("fidelity", 0.005)):
        values = rs[metric][same]
        band = max(np.ptp(values), floor)
        assert abs(row[metric] - values[0]) <= band, (metric, row[metric], values)
    between_seeds = np.corrcoef(rs["logits"][same])[np.triu_indices(len(same), 1)]
    assert np.corrcoef(row["logits"], rs["logits"][same[0]])[0, 1] > between_seeds.max()
