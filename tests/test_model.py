import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import model as M
from helpers import sequences as S

MELITTIN = "GIGAVLKVLTTGLPALISWIKRKRQQ"


@pytest.fixture(scope="module")
def random_params():
    return M.make_model().init(jax.random.PRNGKey(0), jnp.zeros((1, 190, 21)))


@pytest.fixture(scope="module")
def pretrained():
    return M.load_pretrained()


def test_parameter_shapes_and_no_dense_biases(random_params):
    shapes = jax.tree_util.tree_map(jnp.shape, random_params)
    dense = {k: v for k, v in shapes.items() if "dense" in k or "logit" in k}
    assert dense and all(set(v) == {"w"} for v in dense.values())  # no biases
    convs = sorted(k for k in shapes if "conv" in k)
    assert [shapes[k]["w"] for k in convs] == [(5, 21, 16), (3, 16, 16), (3, 16, 16)]
    assert shapes["hemolysis_cnn/dense0"]["w"] == (2 * 16 + 20 + 1, 256)


@pytest.mark.parametrize("activation", [jnp.tanh, jax.nn.relu, jax.nn.gelu])
def test_all_zero_input_is_a_root(activation):
    model = M.make_model(activation=activation)
    params = model.init(jax.random.PRNGKey(1), jnp.zeros((1, 190, 21)))
    out = model.apply(params, jnp.zeros((3, 190, 21)))
    assert out.shape == (3,)
    assert (out == 0).all()  # exactly, not approximately


def test_pretrained_zero_and_all_padding_are_roots(pretrained):
    params, _ = pretrained
    f = M.predict_fn(params)
    padding = jnp.asarray(np.eye(21, dtype=np.float32)[np.zeros((1, 190), int)])
    assert float(f(jnp.zeros((1, 190, 21)))[0]) == 0.0
    assert float(f(padding)[0]) == 0.0


def test_padding_does_not_leak(random_params):
    """The logit does not depend on how much padding follows the peptide."""
    model = M.make_model()
    seqs = [MELITTIN, "KLLK", "A" * 40]
    long = model.apply(random_params, jnp.asarray(S.encode_batch(seqs, length=190)))
    short = model.apply(random_params, jnp.asarray(S.encode_batch(seqs, length=48)))
    np.testing.assert_allclose(long, short, rtol=1e-5, atol=1e-6)


def test_batch_items_are_independent(random_params):
    model = M.make_model()
    x = jnp.asarray(S.encode_batch([MELITTIN, "KK", "WWWW"]))
    batch = model.apply(random_params, x)
    single = jnp.stack([model.apply(random_params, x[i : i + 1])[0] for i in range(3)])
    np.testing.assert_allclose(batch, single, rtol=1e-5, atol=1e-6)


def test_gradients_are_finite_on_zero_and_sequence_inputs(random_params):
    model = M.make_model()
    g = jax.grad(lambda x: model.apply(random_params, x).sum())
    for x in (jnp.zeros((1, 190, 21)), jnp.asarray(S.encode(MELITTIN))[None]):
        assert np.isfinite(np.asarray(g(x))).all()


def test_wrong_input_shape_is_rejected(random_params):
    model = M.make_model()
    with pytest.raises(ValueError, match=r"\[B, L, 21\]"):
        model.apply(random_params, jnp.zeros((190, 21)))
    with pytest.raises(ValueError, match="same length"):
        M.make_model(kernels=(5, 3), pools=(2,)).init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 21)))


def test_save_load_roundtrip_without_pickle(tmp_path, random_params):
    path = tmp_path / "p.npz"
    M.save_params(path, random_params)
    loaded = M.load_params(path)
    assert jax.tree_util.tree_structure(loaded) == jax.tree_util.tree_structure(random_params)
    for a, b in zip(jax.tree_util.tree_leaves(loaded), jax.tree_util.tree_leaves(random_params), strict=True):
        np.testing.assert_array_equal(a, b)
    np.savez(tmp_path / "bad.npz", nokey=np.zeros(2))
    with pytest.raises(ValueError, match="module/name"):
        M.load_params(tmp_path / "bad.npz")
    np.savez(tmp_path / "obj.npz", **{"m/w": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(ValueError):
        M.load_params(tmp_path / "obj.npz")


def test_shipped_weights_and_record(pretrained):
    params, info = pretrained
    assert set(info["metrics"]) == {"train", "validation", "test"}
    assert info["command"].startswith("python -m helpers.training")
    m = M.make_model()
    ref = m.init(jax.random.PRNGKey(0), jnp.zeros((1, 190, 21)))
    assert jax.tree_util.tree_map(jnp.shape, params) == jax.tree_util.tree_map(jnp.shape, ref)


def test_model_works_under_vmap_over_single_examples(random_params):
    """Attribution code vmaps over examples: per-example [1, L, A] calls must agree."""
    model = M.make_model()
    x = jnp.asarray(S.encode_batch([MELITTIN, "KLLK", "W" * 9]))
    per_example = jax.vmap(lambda xi: model.apply(random_params, xi[None])[0])(x)
    np.testing.assert_allclose(per_example, model.apply(random_params, x), rtol=1e-5, atol=1e-6)


def test_smooth_max1_is_max_for_peptides_and_c1_below():
    n = jnp.array([0.0, 0.5, 1.0, 2.0, 26.0])
    np.testing.assert_allclose(M.smooth_max1(n)[2:], [1.0, 2.0, 26.0])
    assert float(M.smooth_max1(0.0)) == 0.5
    d = jax.vmap(jax.grad(M.smooth_max1))
    np.testing.assert_allclose(d(jnp.array([1.0 - 1e-4, 1.0 + 1e-4])), [1.0, 1.0], atol=1e-3)


def test_hydrophobicity_model_is_the_kyte_doolittle_sum():
    f = M.hydrophobicity_model()
    x = jnp.asarray(S.encode_batch(["ILK", "D"], length=8))
    np.testing.assert_allclose(f(x), [(4.5 + 3.8 - 3.9) / 10, -0.35], rtol=1e-6)
    g = jax.grad(lambda xb: f(xb).sum())(x)
    assert float(g[0, 5, S.ALPHABET.index("I")]) == pytest.approx(0.45)  # also on padding rows
    assert float(f(jnp.zeros((1, 8, 21)))[0]) == 0.0


def test_hydropathy_weights_are_the_gradient_of_the_hydrophobicity_model():
    f = M.hydrophobicity_model(scale=5.0)
    x = jnp.asarray(S.encode_batch(["KLW"], length=4))
    g = jax.grad(lambda xb: f(xb).sum())(x)
    np.testing.assert_allclose(g[0], np.broadcast_to(M.hydropathy_weights(5.0), (4, 21)), rtol=1e-6)
