"""Concepts in hidden layers: layer read-outs against the model's own functions, the CAV
classifier against scikit-learn, directional derivatives against finite differences of a
bias shift, TCAV's positive control on the planted-motif CNN, probes on known targets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from helpers import concepts as K
from helpers import data
from helpers import model as cnn
from helpers import sequences as seqs
from helpers import synthetic


@pytest.fixture(scope="module")
def shipped():
    params, _ = cnn.load_pretrained()
    x = data.load_split("test").x[:40]
    return params, x


def test_layers_match_the_model(shipped):
    params, x = shipped
    acts = K.layer_activations(params, x, batch=16)
    assert {k: v.shape for k, v in acts.items()} == {
        "conv0": (40, 16), "conv1": (40, 16), "conv2": (40, 16), "features": (40, 53), "dense0": (40, 256), "dense1": (40, 64)}
    feat = np.asarray(cnn.make_features().apply(params, jnp.asarray(x)))
    np.testing.assert_allclose(acts["features"], feat, atol=1e-5)
    np.testing.assert_allclose(acts["dense0"], feat @ np.asarray(params["hemolysis_cnn/dense0"]["w"]), atol=1e-4)
    grads = K.layer_gradients(params, x, batch=16)
    head, hp = cnn.make_head(), cnn.head_params(params)
    g = np.asarray(jax.vmap(jax.grad(lambda f: head.apply(hp, f[None])[0]))(jnp.asarray(feat)))
    np.testing.assert_allclose(grads["features"], g, atol=1e-5)


@pytest.mark.parametrize("layer", K.CONV_LAYERS)
def test_conv_directional_derivative_is_a_bias_shift(shipped, layer):
    """Moving a conv layer's representation by eps v = adding eps v to that conv's bias."""
    params, x = shipped
    grads = K.layer_gradients(params, x)[layer]
    v = np.random.default_rng(0).normal(size=16)
    v /= np.linalg.norm(v)
    predict = cnn.make_model().apply
    key = next(k for k in params if k.endswith(layer))
    eps = 1e-3
    moved = {k: dict(d) for k, d in params.items()}
    up, down = {k: dict(d) for k, d in params.items()}, moved
    up[key]["b"] = params[key]["b"] + eps * v
    down[key]["b"] = params[key]["b"] - eps * v
    fd = (np.asarray(predict(up, jnp.asarray(x)), float) - np.asarray(predict(down, jnp.asarray(x)), float)) / (2 * eps)
    err = np.abs(grads @ v - fd)
    # max-pooling has kinks: a peptide whose winning window changes within +-eps may differ
    assert np.median(err) < 1e-3 and np.mean(err < 1e-2) >= 0.95


def test_logistic_fit_is_scikit_learns_optimum():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(80, 12))
    y = (z[:, 0] + rng.normal(size=80) > 0).astype(float)
    w, b = K.logistic_fit(z, y)
    ref = LogisticRegression(C=1.0, tol=1e-12, max_iter=10000).fit(z, y)
    np.testing.assert_allclose(w, ref.coef_[0], atol=1e-6)
    assert abs(b - ref.intercept_[0]) < 1e-6


def test_tcav_on_a_linear_layer_with_known_gradients():
    """Concept examples shifted along u; every input's gradient is u: TCAV = 1, test significant.
    A concept shifted along a direction the gradients ignore scores like the random CAVs."""
    rng = np.random.default_rng(1)
    d = 10
    pool = rng.normal(size=(600, d))
    u, w = np.eye(d)[0], np.eye(d)[1]
    pool[:100] += 1.5 * u  # concept "u"
    pool[100:200] += 1.5 * w  # concept "w"
    grads = np.outer(np.ones(50), u) + 0.5 * rng.normal(size=(50, d)) * np.r_[0, 0, np.ones(d - 2)]  # no w component
    sets = K.random_sets(600, runs=15, size=40, seed=0)
    sets = np.array([s[s >= 200][:30] if (s >= 200).sum() >= 30 else s[:30] for s in sets])
    res_u = K.tcav(pool, grads, K.concept_rows(np.arange(600) < 100, runs=15, size=30, seed=1), sets)
    res_w = K.tcav(pool, grads, K.concept_rows((np.arange(600) >= 100) & (np.arange(600) < 200), runs=15, size=30, seed=1), sets)
    assert res_u.concept_scores.mean() > 0.9 and res_u.p < 1e-3
    assert res_w.p > 0.01


@pytest.mark.filterwarnings("ignore:Precision loss occurred")  # concept scores all 0 or all 1: zero spread
def test_random_table_concepts_are_significant_when_aligned_with_the_used_table():
    """Chapter 16's random-table negative control, on a model with a known answer.

    Peptides of uniform random residues; the layer is their composition `c [N, 20]`; the
    model's logit is `softplus(8 t . c)` with t = e_K - e_E (it uses K minus E and nothing
    else), so every input's gradient is a positive multiple of t and a CAV v scores exactly
    1 if t . v > 0, else 0. A concept is the top tenth of a table's composition score, as in
    the chapter. Known answers: the planted table t is detected (score 1, significant); a
    table with t . r = 0 by symmetry (L minus I: the residues are exchangeable, so swapping
    K and E maps its concept to itself and flips t) is not; a random normal table, unrelated
    to the label by construction, is significant whenever its CAVs point consistently to one
    side of t, in the direction of sign(t . r): what the chapter reports for its random tables
    (significant = the gradients are consistently on one side of the concept's direction, not
    the concept is used)."""
    rng = np.random.default_rng(0)
    aa = list(seqs.AMINO_ACIDS)
    peptides = ["".join(rng.choice(aa, int(rng.integers(15, 31)))) for _ in range(1500)]
    comp = seqs.composition(peptides)  # [1500, 20]
    t = np.zeros(20)
    t[aa.index("K")], t[aa.index("E")] = 1.0, -1.0
    explained = comp[:200]
    grads = (8.0 / (1.0 + np.exp(-8.0 * explained @ t)))[:, None] * t  # d softplus(8 t.c) / dc
    sets = K.random_sets(len(comp), runs=20, size=50, seed=0)
    random_cavs = K.random_cav_set(comp, sets, seed=0)

    def run(table):
        score = comp @ table
        rows = K.concept_rows(score >= np.quantile(score, 0.9), runs=20, size=50, seed=1)
        return K.tcav(comp, grads, rows, sets, random_cavs=random_cavs)

    alpha = 0.05 / 25  # the chapter's Bonferroni bar
    planted = run(t)
    assert planted.p < alpha and planted.concept_scores.min() == 1.0
    sym = np.zeros(20)
    sym[aa.index("L")], sym[aa.index("I")] = 1.0, -1.0
    null = run(sym)
    assert null.accuracy.mean() > 0.7  # as separable as the others: a real, unused concept
    assert null.p > 0.05 and 0.2 < null.concept_scores.mean() < 0.8
    n_sig = 0
    for seed in range(100, 110):  # the chapter's kind of table: standard normal values per amino acid
        table = np.random.default_rng(seed).standard_normal(20)
        res = run(table)
        assert res.accuracy.mean() > 0.7
        if res.p < alpha:
            n_sig += 1
            assert np.sign(res.concept_scores.mean() - res.random_scores.mean()) == np.sign(t @ table)
    assert n_sig >= 8  # most unrelated tables pass the test: the negative control fails, as in the chapter


@pytest.fixture(scope="module")
def motif_control():
    params, _ = cnn.load_pretrained(synthetic.MOTIF_MODEL)
    pool = synthetic.planted_motif(1500, seed=21)
    ex = synthetic.planted_motif(300, seed=22)
    acts = K.layer_activations(params, pool.split.x)
    grads = K.layer_gradients(params, ex.split.x[ex.split.y == 1])
    sets = K.random_sets(len(pool.split.y), runs=20, size=50, seed=0)
    even = np.array([len(s) % 2 == 0 for s in pool.split.sequences])
    out = {}
    for layer in K.TCAV_LAYERS:
        rc = K.random_cav_set(acts[layer], sets, seed=0)
        for name, is_c in (("motif", pool.split.y == 1), ("even length", even)):
            out[layer, name] = K.tcav(acts[layer], grads[layer], K.concept_rows(is_c, runs=20, size=50, seed=1), sets,
                                      random_cavs=rc)
    return out


def test_planted_motif_is_detected_and_an_unrelated_concept_is_not(motif_control):
    for layer in ("conv1", "conv2"):
        res = motif_control[layer, "motif"]
        assert res.p < 0.002 and res.concept_scores.mean() > 0.9
    for layer in K.TCAV_LAYERS:
        assert motif_control[layer, "even length"].p > 0.01


def test_probes_read_a_linear_target_and_not_noise():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 8))
    t = np.column_stack([a @ rng.normal(size=8), rng.normal(size=300)])
    r2 = K.probe_r2(a, t, folds=3)
    assert r2.shape == (3, 2)
    assert r2[:, 0].min() > 0.999 and r2[:, 1].mean() < 0.05


def test_control_descriptor_is_a_mean_of_random_values_per_amino_acid():
    peptides = ["KKKK", "LLLL", "KKLL"]
    c = K.control_descriptor(peptides, seed=0)
    assert c[2] == pytest.approx((c[0] + c[1]) / 2)
    assert np.all(c == K.control_descriptor(peptides, seed=0))
    assert not np.allclose(c, K.control_descriptor(peptides, seed=1))


def test_bad_input_is_refused_with_the_argument_named(shipped):
    params, x = shipped
    with pytest.raises(ValueError, match="x must be one-hot"):
        K.layer_activations(params, x[..., :20])
    with pytest.raises(ValueError, match="random"):
        K.train_cav(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="cav"):
        K.tcav_score(np.zeros((5, 3)), np.zeros(4))
    with pytest.raises(ValueError, match="is_concept"):
        K.concept_rows(np.zeros(10, bool), runs=2, size=3, seed=0)
    with pytest.raises(ValueError, match="targets"):
        K.probe_r2(np.zeros((10, 3)), np.zeros(9))
    with pytest.raises(TypeError, match="seqs"):
        K.control_descriptor("KKLL", seed=0)


def test_random_cav_is_antisymmetric_and_the_test_is_calibrated_on_random_concepts():
    """Swapping a random CAV's two sets gives -v, which scores 1 - score(v): a random CAV's
    expected score is 0.5. Random subsets taken as concepts (random against random, each with
    its own random sets) are rejected at about the nominal rate, even with concentrated gradients."""
    rng = np.random.default_rng(3)
    d = 8
    pool = rng.normal(size=(1000, d))
    grads = np.outer(np.ones(60), np.eye(d)[0]) + 0.3 * rng.normal(size=(60, d))  # concentrated along e0
    sets = K.random_sets(1000, runs=2, size=40, seed=0)
    v_ab, _ = K.train_cav(pool[sets[0]], pool[sets[1]], seed=0)
    v_ba, _ = K.train_cav(pool[sets[1]], pool[sets[0]], seed=0)
    np.testing.assert_allclose(v_ab, -v_ba, atol=1e-8)
    assert abs(K.tcav_score(grads, -v_ab) - (1 - K.tcav_score(grads, v_ab))) < 1e-12
    ps = []
    for rep in range(60):
        is_c = np.zeros(1000, bool)
        is_c[np.random.default_rng(100 + rep).choice(1000, 200, replace=False)] = True
        s = K.random_sets(1000, runs=10, size=40, seed=500 + rep)
        ps.append(K.tcav(pool, grads, K.concept_rows(is_c, runs=10, size=40, seed=rep), s).p)
    ps = np.array(ps)
    assert np.mean(ps < 0.05) <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / len(ps))  # about nominal (3 s.e.)
    assert np.mean(ps < 0.5) > 0.25  # and not a test that never rejects
