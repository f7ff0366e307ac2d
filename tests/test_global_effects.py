"""Global effects against answers that cannot lie: additive models (ALE and partial
dependence equal the centred shape functions), the correlated case with a known slope,
permutation importance of an unused feature, the
batched bootstrap of permutation importance against a plain loop."""

import jax
import numpy as np
import pytest

from helpers import additive
from helpers import global_effects as G
from helpers import metrics


def _additive():
    x, _ = additive.toy_data(300, seed=0)
    x[:, 1] = 0.8 * x[:, 0] + 0.6 * x[:, 1]  # correlated features do not matter to an additive model
    return x, lambda v: additive.toy_terms(v).sum(1) + 2.0


@pytest.mark.parametrize("j", range(3))
def test_ale_of_an_additive_model_is_its_centred_shape_function(j):
    x, f = _additive()
    exact = G.ale(f, x, j, bins=None)  # every value an edge: exact
    g = additive.TOY_SHAPES[j]
    np.testing.assert_allclose(exact.values, g(exact.edges) - g(x[:, j]).mean(), atol=1e-9)  # centred on the data
    grid = np.repeat(exact.edges[:, None], 3, axis=1)  # the course's centring helper (float32) agrees
    np.testing.assert_allclose(exact.values, additive.centred_terms(additive.toy_terms, grid, x)[:, j], rtol=1e-5, atol=1e-4)
    binned = G.ale(f, x, j, bins=10)  # increments exact at any binning
    np.testing.assert_allclose(binned.values - binned.values[0], g(binned.edges) - g(binned.edges[0]), atol=1e-9)


def test_ale_of_the_trained_additive_network_is_its_shape_function():
    x, y = additive.toy_data(400, seed=0)
    model = additive.make_additive(3, hidden=(8,))
    params = additive.fit(model, x, y, key=jax.random.PRNGKey(0), epochs=3).params
    f = lambda v: np.asarray(model.apply(params, np.asarray(v, np.float32)), float)  # noqa: E731
    a = G.ale(f, x, 1, bins=None)
    want = additive.centred_terms(lambda v: model.apply(params, v, terms=True), np.repeat(a.edges[:, None], 3, 1), x)[:, 1]
    np.testing.assert_allclose(a.values, want, atol=2e-5)


def test_partial_dependence_of_an_additive_model_is_its_shape_function_plus_a_constant():
    x, f = _additive()
    grid = np.linspace(-2, 2, 9)
    pd_curve = G.partial_dependence(f, x, 2, grid)
    d = pd_curve - grid**3
    np.testing.assert_allclose(d, d[0], atol=1e-9)


def test_correlated_case_ale_finds_the_slope_and_partial_dependence_does_not():
    case = G.correlated_case(2000, seed=1, strength=10.0)
    a = G.ale(case.model, case.x, 0, bins=20)
    slope = np.polyfit(a.edges, a.values, 1)[0]
    assert abs(slope - case.slope) < 0.1
    curve = G.partial_dependence(case.model, case.x, 0, a.edges)
    assert np.polyfit(a.edges, curve, 2)[0] == pytest.approx(10.0, rel=1e-6)  # the strength, exactly
    # on the data f grows like 2 x1 (x2 follows x1): ALE splits it 1 + 1, PD gives x1 alone a parabola
    assert np.abs(curve - (a.edges - a.edges.mean())).max() > 1.0


def test_permutation_importance_of_an_unused_feature_is_zero():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    y = (x[:, 0] + 0.3 * rng.normal(size=300) > 0).astype(int)
    pi = G.permutation_importance(lambda v: v[:, 0], x, y, metrics.auroc, repeats=5, seed=0)
    assert pi.shape == (3, 5)
    assert np.all(pi[1:] == 0.0) and np.all(pi[0] > 0.2)


def test_bootstrap_permutation_importance_is_the_plain_loop():
    """The batched bootstrap equals resampling, shuffling and scoring one resample at a time."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 3))
    y = (x[:, 0] + 0.5 * x[:, 1] + 0.5 * rng.normal(size=120) > 0).astype(int)
    f = lambda v: v[:, 0] + 0.5 * v[:, 1] + 0.1 * v[:, 0] * v[:, 1]  # noqa: E731
    got = G.permutation_importance_bootstrap(f, x, y, metrics.auroc, resamples=7, seed=3, chunk=3)
    draw = np.random.default_rng(3)
    want = []
    for _ in range(7):
        i, p = draw.integers(0, 120, 120), draw.permutation(120)
        xb, yb = x[i], y[i]
        row = []
        for j in range(3):
            shuffled = xb.copy()
            shuffled[:, j] = xb[p, j]
            row.append(metrics.auroc(yb, f(xb)) - metrics.auroc(yb, f(shuffled)))
        want.append(row)
    np.testing.assert_allclose(got, np.array(want), atol=1e-12)
    np.testing.assert_allclose(G.permutation_importance_bootstrap(f, x, y, metrics.auroc, resamples=7, seed=3, chunk=7), got)
    unused = G.permutation_importance_bootstrap(lambda v: v[:, 0], x, y, metrics.auroc, resamples=5, seed=0)
    assert unused.shape == (5, 3) and np.all(unused[:, 1:] == 0.0) and np.all(unused[:, 0] > 0.1)
    with pytest.raises(ValueError, match="resamples"):
        G.permutation_importance_bootstrap(f, x, y, metrics.auroc, resamples=1)
    with pytest.raises(ValueError, match="y must"):
        G.permutation_importance_bootstrap(f, x, y[:-1], metrics.auroc)


def test_bad_input_is_refused_with_the_argument_named():
    x, f = _additive()
    with pytest.raises(ValueError, match="feature"):
        G.ale(f, x, 3)
    with pytest.raises(TypeError, match="bins"):
        G.ale(f, x, 0, bins=2.5)
    with pytest.raises(ValueError, match="grid"):
        G.partial_dependence(f, x, 0, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="predict"):
        G.ale(lambda v: np.zeros((len(v), 2)), x, 0)
    with pytest.raises(ValueError, match="x"):
        G.ale(f, x[:, 0], 0)
