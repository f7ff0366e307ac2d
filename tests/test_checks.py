"""Exercise checks: pass on correct implementations, fail on stubs and on specific mistakes
with a sentence that names the broken property."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import attribution, checks, shapley


def reference_ig(f, x, baseline, steps):
    return attribution.integrated_gradients(f, x, baseline, steps=steps).attributions


def test_integrated_gradients_check():
    assert "pass" in checks.check_integrated_gradients(reference_ig)

    def stub(f, x, baseline, steps):
        raise NotImplementedError("exercise: write `my_integrated_gradients`")

    with pytest.raises(checks.CheckFailed, match="not written yet"):
        checks.check_integrated_gradients(stub)

    def no_delta_factor(f, x, baseline, steps):  # forgets (x - baseline): gradient average only
        alphas = (jnp.arange(steps) + 0.5) / steps
        path = baseline[None] + alphas[:, None, None] * (x - baseline)[None]
        return jax.vmap(jax.grad(lambda z: f(z[None])[0]))(path).mean(axis=0)

    with pytest.raises(checks.CheckFailed, match=r"\(x - baseline\) factor"):
        checks.check_integrated_gradients(no_delta_factor)

    # One left-rule step is gradient x input: exact on the linear model, not on the CNN.
    with pytest.raises(checks.CheckFailed, match="completeness|differ from the reference"):
        checks.check_integrated_gradients(lambda f, x, b, s: attribution.integrated_gradients(f, x, b, steps=1, rule="left").attributions)

    with pytest.raises(checks.CheckFailed, match="shape"):
        checks.check_integrated_gradients(lambda f, x, b, s: np.zeros(3))


def exact(v, n):
    masks = np.array(list(itertools.product([False, True], repeat=n)))
    bits = masks.astype(int) @ (1 << np.arange(n))
    table = np.zeros(2**n)
    table[bits] = np.asarray(v(masks))
    return shapley.shapley_from_values(table, n)


def test_shapley_check():
    assert "pass" in checks.check_shapley(exact)

    def equal_split(v, n):  # efficient, but not Shapley: everyone gets the same share
        total = float(v(np.ones((1, n), bool))[0] - v(np.zeros((1, n), bool))[0])
        return np.full(n, total / n)

    with pytest.raises(checks.CheckFailed, match="player .* should get"):
        checks.check_shapley(equal_split)

    def unweighted(v, n):  # marginal contributions averaged without the Shapley weights
        masks = np.array(list(itertools.product([False, True], repeat=n)))
        vals = {tuple(m): float(x) for m, x in zip(masks, np.asarray(v(masks)), strict=True)}
        phi = np.zeros(n)
        for m in masks:
            for i in np.flatnonzero(~m):
                w = m.copy()
                w[i] = True
                phi[i] += (vals[tuple(w)] - vals[tuple(m)]) / 2 ** (n - 1)
        return phi

    with pytest.raises(checks.CheckFailed, match="efficiency|should get"):
        checks.check_shapley(unweighted)
    with pytest.raises(checks.CheckFailed, match="not written yet"):
        checks.check_shapley(lambda v, n: (_ for _ in ()).throw(NotImplementedError("exercise")))
    assert math.isclose(sum(exact(lambda m: np.asarray(m, float).sum(1), 3)), 3.0)


def test_gradient_x_input_check():
    assert "pass" in checks.check_gradient_x_input(attribution.gradient_x_input)
    with pytest.raises(checks.CheckFailed, match="x times the weights"):
        checks.check_gradient_x_input(attribution.saliency)  # forgot the "x input"


def test_average_path_length_check():
    from helpers import treereg

    assert "pass" in checks.check_average_path_length(treereg.average_path_length)
    with pytest.raises(checks.CheckFailed, match="single leaf.*do not count the leaf"):
        checks.check_average_path_length(lambda tree, x: treereg.average_path_length(tree, x) + 1)  # counts the leaf
    with pytest.raises(checks.CheckFailed, match="four-point tree"):
        checks.check_average_path_length(lambda tree, x: float(tree.get_depth()))  # the depth is not the average


def test_deletion_curve_check():
    from helpers import evaluation

    assert "pass" in checks.check_deletion_curve(lambda f, x, order: evaluation.faithfulness_curve(f, x, order))
    with pytest.raises(checks.CheckFailed, match="additive model"):
        checks.check_deletion_curve(lambda f, x, order: evaluation.faithfulness_curve(f, x, order[::-1]))
    with pytest.raises(checks.CheckFailed, match="points"):
        checks.check_deletion_curve(lambda f, x, order: evaluation.faithfulness_curve(f, x, order)[1:])


def test_auroc_occlusion_and_edit_distance_checks():
    from helpers import counterfactual, metrics, perturbation

    assert "pass" in checks.check_auroc(metrics.auroc)
    with pytest.raises(checks.CheckFailed, match="tied"):  # ties counted as wins
        checks.check_auroc(lambda y, s: np.mean([a >= b for a in s[y == 1] for b in s[y == 0]]))
    assert "pass" in checks.check_occlusion(lambda f, x: perturbation.occlusion(f, x))
    with pytest.raises(checks.CheckFailed, match="padding row"):  # zeros instead of padding
        checks.check_occlusion(lambda f, x: perturbation.occlusion(f, x, fill="zeros") * 0.5)
    assert "pass" in checks.check_edit_distance(counterfactual.edit_distance)
    with pytest.raises(checks.CheckFailed, match="one deletion"):  # Hamming distance plus the length difference
        checks.check_edit_distance(lambda a, b: sum(p != q for p, q in zip(a, b, strict=False)) + abs(len(a) - len(b)))
