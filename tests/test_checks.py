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


# Every other check: it passes on a correct implementation (mostly the helpers' own, which
# the check compares against, so a pass also shows the tolerances hold), fails with "not
# written yet" on a stub, and fails on a typical mistake with a sentence that names it.


def _stub(*args):
    raise NotImplementedError("exercise: write it")


def _fd(f, x, eps, central=True):
    n = x.size
    e = (jnp.eye(n) * eps).reshape((n,) + x.shape)
    if central:
        v = f(jnp.concatenate([x[None] + e, x[None] - e]))
        return ((v[:n] - v[n:]) / (2 * eps)).reshape(x.shape)
    v = f(jnp.concatenate([x[None] + e, x[None]]))
    return ((v[:n] - v[n]) / eps).reshape(x.shape)


def _smoothgrad(f, x, key, n, sigma, everywhere=True):
    noise = sigma * jax.random.normal(key, (n,) + x.shape)
    if not everywhere:  # noise on the residue rows only
        noise = noise * (x.argmax(-1) > 0)[:, None]
    return jax.vmap(jax.grad(lambda z: f(z[None])[0]))(x[None] + noise).mean(axis=0)


def _multiplier(act, z, z0):
    small = jnp.abs(z - z0) < 1e-6
    slope = jax.vmap(jax.grad(act))(z.ravel()).reshape(z.shape)
    return jnp.where(small, slope, (act(z) - act(z0)) / jnp.where(small, 1.0, z - z0))


def _permutation_shapley(v, n, rng, n_permutations, subsets=False):
    if subsets:  # random coalitions instead of orders: not efficient, not Shapley
        m = rng.uniform(size=(n_permutations, n)) < 0.5
        return np.array([np.mean(np.asarray(v(m | (np.arange(n) == i))) - np.asarray(v(m & (np.arange(n) != i)))) for i in range(n)])
    rank = np.argsort([rng.permutation(n) for _ in range(n_permutations)], axis=1)
    masks = rank[:, None, :] < np.arange(n + 1)[None, :, None]
    vals = np.asarray(v(masks.reshape(-1, n))).reshape(n_permutations, n + 1)
    return (np.take_along_axis(vals, rank + 1, 1) - np.take_along_axis(vals, rank, 1)).mean(axis=0)


def _weighted_ridge(z, y, w, alpha, weighted_means=True):
    zm = np.average(z, 0, weights=w if weighted_means else None)
    ym = np.average(y, weights=w if weighted_means else None)
    zc, yc = z - zm, y - ym
    coef = np.linalg.solve(zc.T @ (w[:, None] * zc) + alpha * np.eye(z.shape[1]), zc.T @ (w * yc))
    return coef, ym - zm @ coef


def _lime_least_squares(f, x, rng, n_samples, kernel_width, flip=False):
    n = int((np.asarray(x).argmax(-1) > 0).sum())
    removed = rng.integers(1, n, n_samples - 1)
    z = np.concatenate([np.ones((1, n), bool), np.argsort(rng.uniform(size=(n_samples - 1, n)), 1) >= removed[:, None]])
    keep = np.ones((n_samples, x.shape[0]), bool)
    keep[:, :n] = z
    y = np.asarray(f(jnp.where(jnp.asarray(keep)[:, :, None], x[None], jnp.zeros(21).at[0].set(1.0))), float)
    w = np.sqrt(np.exp(-(((~z).sum(1) / n) ** 2) / kernel_width**2))
    return _weighted_ridge((~z if flip else z).astype(float), y, w, 0.0)[0]


def _cg(matvec, b, tol, maxiter):
    x, r = jnp.zeros_like(b), b
    p, rr = r, r @ r
    for _ in range(maxiter):
        if jnp.sqrt(rr) / jnp.linalg.norm(b) < tol:
            break
        ap = matvec(p)
        a = rr / (p @ ap)
        x, r = x + a * p, r - a * ap
        rr, old = r @ r, rr
        p = r + rr / old * p
    return x


def _best_substitution(f, seq):
    from helpers import counterfactual
    from helpers import sequences as S

    logits = counterfactual.substitution_scan(f, seq).logits.copy()
    logits[np.arange(len(seq)), [S.AMINO_ACIDS.index(a) for a in seq]] = np.inf
    i, a = np.unravel_index(np.argmin(logits), logits.shape)
    return int(i) + 1, S.AMINO_ACIDS[a], float(logits[i, a])


def _mimic(labels, x, leaf):
    from helpers import treereg

    tree = treereg.mimic_tree(x, labels, min_samples_leaf=leaf)
    return treereg.fidelity(tree, x, labels), treereg.average_path_length(tree, x)


def _descriptors(seq, degrees=False):
    from helpers import sequences as S

    h = np.array([S.KYTE_DOOLITTLE[a] for a in seq])
    angle = np.arange(len(seq)) * (100.0 if degrees else np.deg2rad(100.0))
    charge = sum(seq.count(a) for a in "KR") - sum(seq.count(a) for a in "DE")
    return charge, h.mean(), abs((h * np.exp(1j * angle)).sum()) / len(seq)


def _class_difference(sequences, labels, pooled=True):
    from helpers import sequences as S

    labels = np.asarray(labels)
    if not pooled:
        c = S.composition(sequences)
        return 100 * (c[labels == 1].mean(0) - c[labels == 0].mean(0))
    return 100 * (S.pooled_composition([s for s, y in zip(sequences, labels, strict=True) if y == 1])
                  - S.pooled_composition([s for s, y in zip(sequences, labels, strict=True) if y == 0]))


def _cases():
    from scipy.stats import rankdata

    from helpers import additive, metrics, perturbation

    def table(lo, st, v, x):
        return additive.table_terms(additive.Tables(lo, st, v, 0.0), x)

    def nearest(lo, st, v, x):
        k = np.clip(np.round((x - lo) / st).astype(int), 0, v.shape[1] - 1)
        return v[np.arange(v.shape[0]), k]

    def window_sum(f, x, window):  # adds the drops of the covering windows instead of averaging
        game = perturbation.make_game(f, x, baseline="padding")
        masks = perturbation.window_masks(game.n, window)
        return ((game.full - game(masks))[:, None] * ~masks).sum(axis=0)

    def argsort_ranks(a, b):
        return float(np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1])

    return [
        (checks.check_mcc, lambda y, p: metrics.classification_metrics(y, 2.0 * p - 1.0)["mcc"],
         lambda y, p: float(np.mean(y == p)), "the MCC is"),
        (checks.check_finite_differences, _fd, lambda f, x, eps: _fd(f, x, eps, central=False), "one-sided difference"),
        (checks.check_path_rule, attribution.path_rule,
         lambda steps, rule: attribution.path_rule(steps, rule) if rule != "trapezoid"  # end weights not halved
         else (np.arange(steps + 1) / steps, np.full(steps + 1, 1 / steps)), "must sum to 1"),
        (checks.check_clip_renormalise, attribution.project_to_simplex_rows,
         lambda x: jnp.clip(x, 0, None) / jnp.clip(x, 0, None).sum(), "divide each position"),
        (checks.check_smoothgrad, _smoothgrad,
         lambda f, x, key, n, sigma: _smoothgrad(f, x, key, n, sigma, everywhere=False), "more than sampling explains"),
        (checks.check_rescale_multiplier, _multiplier,
         lambda act, z, z0: jax.vmap(jax.grad(act))(z), "should get"),
        (checks.check_deeplift_dense, lambda w1, w2, x, x0: (x - x0) * (w1 @ (_multiplier(jnp.tanh, x @ w1, x0 @ w1) * w2)),
         lambda w1, w2, x, x0: (x - x0) * jax.grad(lambda v: jnp.tanh(v @ w1) @ w2)(x), "summation|sum to"),
        (checks.check_window_occlusion, lambda f, x, w: perturbation.occlusion(f, x, window=w), window_sum, "average"),
        (checks.check_permutation_shapley, _permutation_shapley,
         lambda v, n, rng, p: _permutation_shapley(v, n, rng, p, subsets=True), "sum to"),
        (checks.check_weighted_ridge, _weighted_ridge,
         lambda z, y, w, a: _weighted_ridge(z, y, w, a, weighted_means=False), "weighted"),
        (checks.check_lime_least_squares, _lime_least_squares,
         lambda f, x, rng, s, w: _lime_least_squares(f, x, rng, s, w, flip=True), "recover each residue"),
        (checks.check_hvp, lambda loss, t, v: jax.jvp(jax.grad(loss), (t,), (v,))[1],
         lambda loss, t, v: jax.grad(loss)(t) * v, "jax.jvp of jax.grad"),
        (checks.check_conjugate_gradient, _cg,
         lambda mv, b, tol, it: jnp.linalg.solve(jnp.stack([mv(e) for e in jnp.eye(len(b))], 1), b), "never the whole matrix"),
        (checks.check_best_substitution, _best_substitution,
         lambda f, s: (_best_substitution(f, s)[0] - 1,) + _best_substitution(f, s)[1:], "count from 1"),
        (checks.check_centre_shapes, lambda tg, td, b: (tg - td.mean(0), b + td.mean(0).sum()),
         lambda tg, td, b: (tg - td.mean(0), b), "bias must absorb"),
        (checks.check_table_lookup, table, nearest, "halfway"),
        (checks.check_mimic_tree, _mimic, lambda y, x, leaf: (_mimic(y, x, leaf)[0], _mimic(y, x, leaf)[1] + 1), "not the leaf"),
        (checks.check_spearman, lambda a, b: float(np.corrcoef(rankdata(a), rankdata(b))[0, 1]), argsort_ranks, "mean of the ranks"),
        (checks.check_helix_descriptors, _descriptors, lambda s: _descriptors(s, degrees=True), "radians"),
        (checks.check_class_difference, _class_difference, lambda s, y: _class_difference(s, y, pooled=False), "pool the residues"),
    ]


@pytest.mark.parametrize("case", range(20))
def test_check_passes_correct_and_fails_stub_and_mistake(case):
    check, correct, mistake, message = _cases()[case]
    assert "pass" in check(correct)
    with pytest.raises(checks.CheckFailed, match="not written yet"):
        check(_stub)
    with pytest.raises(checks.CheckFailed, match=message):
        check(mistake)
