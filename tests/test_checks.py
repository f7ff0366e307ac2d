"""Exercise checks: pass on the book's own solutions (read from the chapters' `solution`
cells) with the book's cases and with randomised grading cases, fail on stubs, on specific
mistakes with a sentence that names the broken property, and on solutions that call the
course's reference implementation ("write it yourself")."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import attribution, checks
from helpers.course import exercises
from helpers.course.checks import _common


BOOK = ("01_data_and_model", "02_gradients", "03_integrated_gradients", "04_smoothgrad", "05_deeplift", "06_occlusion",
        "07_shapley", "08_lime", "09_influence", "10_counterfactuals", "11_additive_networks", "12_tree_regularization",
        "13_evaluating_explanations", "14_case_study_shortcuts")  # chapters 15, 16: their own check modules and tests


@functools.cache
def sol(chapter: str) -> dict:
    """The solution functions of chapter `chapter` ("01" ... "14")."""
    return exercises.solutions(exercises.ROOT / "chapters" / f"{BOOK[int(chapter) - 1]}.ipynb")


def _stub(*args):
    raise NotImplementedError("exercise: write it")


# ---------------------------------------------------------------- the guard itself


def test_forbid_catches_aliases_and_swallowed_calls_and_restores():
    from helpers.attribution import integrated_gradients as alias  # imported before the block

    code = attribution.integrated_gradients.__code__

    def sneaky(*args):
        try:
            return alias(*args)
        except Exception:
            return 0.0  # swallows the error: the call is still recorded

    with pytest.raises(checks.CheckFailed, match="write it yourself.*integrated_gradients"):
        _common._collect(sneaky, [(1, 2, 3)], what="your IG", forbidden=(attribution.integrated_gradients,))
    assert attribution.integrated_gradients.__code__ is code  # restored
    with pytest.raises(checks.CheckFailed, match="write it yourself"):
        _common._collect(lambda: alias(1, 2, 3), [()], what="x", forbidden=(attribution.integrated_gradients,))
    assert attribution.integrated_gradients.__code__ is code


def test_forbid_swaps_closures_and_wrapped_functions():
    from scipy.sparse.linalg import cg
    from sklearn.metrics import roc_auc_score  # a decorated function (a closure with __wrapped__)

    for fn, args in ((roc_auc_score, ([0, 1], [0.1, 0.2])), (cg, (np.eye(2), np.ones(2)))):
        with pytest.raises(checks.CheckFailed, match="write it yourself"):
            _common._collect(lambda fn=fn, args=args: fn(*args), [()], what="x", forbidden=(fn,))
    assert roc_auc_score([0, 1], [0.1, 0.2]) == 1.0  # works again afterwards


def test_grading_cases_differ_from_the_book_and_are_reproducible():
    assert _common._peptides(None) == _common.PEPTIDES
    assert _common._peptides(5) == _common._peptides(5) != _common._peptides(6)
    assert not set(_common._peptides(5)) & set(_common.PEPTIDES)
    lin5, w5, _ = _common._models(5)
    assert w5[0] == 0.0 and not np.allclose(w5, _common._models(None)[1])


# ---------------------------------------------------------------- specific checks


def test_integrated_gradients_check():
    mine = sol("03")["my_integrated_gradients"]
    assert "pass" in checks.check_integrated_gradients(mine)
    with pytest.raises(checks.CheckFailed, match="not written yet"):
        checks.check_integrated_gradients(_stub)

    def no_delta_factor(f, x, baseline, steps):  # forgets (x - baseline): gradient average only
        alphas = (jnp.arange(steps) + 0.5) / steps
        path = baseline[None] + alphas[:, None, None] * (x - baseline)[None]
        return jax.vmap(jax.grad(lambda z: f(z[None])[0]))(path).mean(axis=0)

    with pytest.raises(checks.CheckFailed, match=r"\(x - baseline\) factor"):
        checks.check_integrated_gradients(no_delta_factor)
    # One left-rule step is (x - baseline) x the gradient at the baseline: exact on the linear model, not on the CNN.
    with pytest.raises(checks.CheckFailed, match="completeness|off by"):
        checks.check_integrated_gradients(lambda f, x, b, s: (x - b) * jax.grad(lambda z: f(z[None])[0])(b))
    with pytest.raises(checks.CheckFailed, match="shape"):
        checks.check_integrated_gradients(lambda f, x, b, s: np.zeros(3))
    with pytest.raises(checks.CheckFailed, match="write it yourself"):
        checks.check_integrated_gradients(lambda f, x, b, s: attribution.integrated_gradients(f, x, b, steps=s).attributions)


def test_shapley_check():
    mine = sol("07")["my_shapley"]
    assert "pass" in checks.check_shapley(mine)
    assert "pass" in checks.check_shapley(mine, seed=3)

    def equal_split(v, n):  # efficient, but not Shapley: everyone gets the same share
        total = float(v(np.ones((1, n), bool))[0] - v(np.zeros((1, n), bool))[0])
        return np.full(n, total / n)

    with pytest.raises(checks.CheckFailed, match="player .* off by"):
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

    with pytest.raises(checks.CheckFailed, match="efficiency|off by"):
        checks.check_shapley(unweighted)
    with pytest.raises(checks.CheckFailed, match="not written yet"):
        checks.check_shapley(_stub)

    def brute_force_with_the_course(v, n):
        from helpers import shapley

        masks = shapley.all_coalitions(n)
        table = np.zeros(2**n)
        table[masks.astype(int) @ (1 << np.arange(n))] = np.asarray(v(masks))
        return shapley.shapley_from_values(table, n)

    with pytest.raises(checks.CheckFailed, match="write it yourself.*shapley_from_values"):
        checks.check_shapley(brute_force_with_the_course)


def test_gradient_x_input_check():
    assert "pass" in checks.check_gradient_x_input(sol("02")["my_gradient_x_input"])
    with pytest.raises(checks.CheckFailed, match="x times the weights"):  # forgot the "x input"
        checks.check_gradient_x_input(lambda f, x: jax.grad(lambda z: f(z[None])[0])(x))
    with pytest.raises(checks.CheckFailed, match="write it yourself"):
        checks.check_gradient_x_input(attribution.gradient_x_input)


def test_average_path_length_check():
    mine = sol("12")["my_average_path_length"]
    assert "pass" in checks.check_average_path_length(mine)
    with pytest.raises(checks.CheckFailed, match="single leaf.*do not count the leaf"):
        checks.check_average_path_length(lambda tree, x: mine(tree, x) + 1)  # counts the leaf
    with pytest.raises(checks.CheckFailed, match="four-point tree"):
        checks.check_average_path_length(lambda tree, x: float(tree.get_depth()))  # the depth is not the average
    with pytest.raises(checks.CheckFailed, match="write it yourself.*decision_path"):
        checks.check_average_path_length(lambda tree, x: float(tree.decision_path(x).sum(1).mean() - 1))


def test_deletion_curve_check():
    mine = sol("13")["my_deletion_curve"]
    assert "pass" in checks.check_deletion_curve(mine)
    with pytest.raises(checks.CheckFailed, match="additive model"):
        checks.check_deletion_curve(lambda f, x, order: mine(f, x, order[::-1]))
    with pytest.raises(checks.CheckFailed, match="points"):
        checks.check_deletion_curve(lambda f, x, order: mine(f, x, order)[1:])


def test_auroc_occlusion_and_edit_distance_checks():
    from helpers import metrics

    assert "pass" in checks.check_auroc(sol("01")["my_auroc"])
    with pytest.raises(checks.CheckFailed, match="tied"):  # ties counted as wins
        checks.check_auroc(lambda y, s: np.mean([a >= b for a in s[y == 1] for b in s[y == 0]]))
    with pytest.raises(checks.CheckFailed, match="write it yourself"):
        checks.check_auroc(metrics.auroc)
    assert "pass" in checks.check_occlusion(sol("06")["my_occlusion"])

    def zero_fill(f, x):  # deletes a residue by a row of zeros instead of the padding row
        n = int((np.asarray(x).argmax(-1) > 0).sum())
        logits = np.asarray(f(jnp.stack([x] + [x.at[i].set(0.0) for i in range(n)])))
        return 0.5 * (logits[0] - logits[1:])

    with pytest.raises(checks.CheckFailed, match="padding row"):
        checks.check_occlusion(zero_fill)
    assert "pass" in checks.check_edit_distance(sol("10")["my_edit_distance"])
    with pytest.raises(checks.CheckFailed, match="one deletion"):  # Hamming distance plus the length difference
        checks.check_edit_distance(lambda a, b: sum(p != q for p, q in zip(a, b, strict=False)) + abs(len(a) - len(b)))


def _mannwhitneyu_auroc(y, s):
    from scipy.stats import mannwhitneyu

    y, s = np.asarray(y), np.asarray(s)
    return float(mannwhitneyu(s[y == 1], s[y == 0]).statistic / ((y == 1).sum() * (y == 0).sum()))


def _somersd_auroc(y, s):
    from scipy.stats import somersd

    d = somersd(np.asarray(y), np.asarray(s)).statistic  # Somers' D = 2 AUROC - 1
    return float((d + 1.0) / 2.0) if np.isfinite(d) else 0.5  # undefined (0 / 0) when every score is tied


def _det_curve_auroc(y, s):
    from sklearn.metrics import det_curve

    fpr, fnr, _ = det_curve(y, s)  # thresholds increasing; the ends (0, 0) and (1, 1) of the ROC curve left out
    return float(np.trapezoid(np.r_[0.0, 1.0 - fnr[::-1], 1.0], np.r_[0.0, fpr[::-1], 1.0]))


def _course_roc_curve_auroc(y, s):
    from helpers import metrics

    fpr, tpr, _ = metrics.roc_curve(y, s)
    return float(np.trapezoid(tpr, fpr))


def _ranksums_auroc(y, s):
    from scipy.stats import ranksums

    y, s = np.asarray(y), np.asarray(s)
    n1, n0 = int((y == 1).sum()), int((y == 0).sum())
    z = ranksums(s[y == 1], s[y == 0]).statistic  # (R1 - n1 (n + 1) / 2) / sqrt(n1 n0 (n + 1) / 12), no tie correction
    u = z * np.sqrt(n1 * n0 * (n1 + n0 + 1) / 12.0) + n1 * (n1 + n0 + 1) / 2.0 - n1 * (n1 + 1) / 2.0
    return float(u / (n1 * n0))


def _kendalltau_auroc(y, s):
    from scipy.stats import kendalltau

    y, s = np.asarray(y), np.asarray(s)
    n1, n0, n = int((y == 1).sum()), int((y == 0).sum()), len(y)
    tau = kendalltau(y, s, variant="c").statistic  # tau_c = 8 n1 n0 (AUROC - 1/2) / n^2 for 0/1 labels
    return float(0.5 + tau * n**2 / (8.0 * n1 * n0)) if np.isfinite(tau) else 0.5  # NaN when every score is tied


def _mstats_auroc(y, s):
    from scipy.stats import mstats

    y, s = np.asarray(y), np.asarray(s)
    pairs = int((y == 1).sum()) * int((y == 0).sum())
    u = float(mstats.mannwhitneyu(s[y == 1], s[y == 0]).statistic) / pairs  # the smaller of U / pairs and 1 - U / pairs
    tau = float(mstats.kendalltau(y, s).statistic)  # its sign says which
    return max(u, 1.0 - u) if tau > 0 else min(u, 1.0 - u)


@pytest.mark.parametrize("answer", [_mannwhitneyu_auroc, _somersd_auroc, _ranksums_auroc, _kendalltau_auroc,
                                    _mstats_auroc, _det_curve_auroc, _course_roc_curve_auroc],
                         ids=["scipy-mannwhitneyu", "scipy-somersd", "scipy-ranksums", "scipy-kendalltau",
                              "scipy-mstats", "sklearn-det_curve", "course-roc_curve"])
def test_auroc_library_routes_lose_the_marks(answer):
    """The Mann-Whitney U over n1 n0, Somers' D (2 AUROC - 1), the rank-sum z, Kendall's tau-c,
    scikit-learn's DET curve and the course's ROC curve give the AUROC exactly (first assert);
    the check refuses them, with its hidden cases too."""
    from helpers import metrics

    y, s = np.array([0, 1, 0, 1, 1, 0, 1]), np.array([0.1, 0.3, 0.3, 0.9, 0.2, 0.5, 0.5])
    assert abs(answer(y, s) - metrics.auroc(y, s)) < 1e-12
    for seed in (None, 4):
        with pytest.raises(checks.CheckFailed, match="write it yourself"):
            checks.check_auroc(answer, seed=seed)


def test_auroc_from_rankdata_is_allowed():
    """`scipy.stats.rankdata` is a building block, not the answer: the rank-sum formula passes."""
    from scipy.stats import rankdata

    def by_ranks(y, s):
        y = np.asarray(y)
        n1, n0 = int((y == 1).sum()), int((y == 0).sum())
        return float((rankdata(s)[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))

    assert "pass" in checks.check_auroc(by_ranks)
    assert "pass" in checks.check_auroc(by_ranks, seed=4)


def test_failure_messages_do_not_reveal_the_expected_values():
    """A lookup table built from failures gets nothing: the messages name the property and
    the size of the error, not the answer (here: the AUROC of 1.0, 0.0, 0.5, 0.75)."""
    with pytest.raises(checks.CheckFailed) as err:
        checks.check_auroc(lambda y, s: 0.123)
    assert "off by" in str(err.value) and "1.0" not in str(err.value) and "0.877" in str(err.value)
    with pytest.raises(checks.CheckFailed) as err:
        checks.check_path_rule(lambda steps, rule: (np.zeros(steps + (rule == "trapezoid")), np.full(steps + (rule == "trapezoid"), 1.0 / (steps + (rule == "trapezoid")))))
    assert "wrong places" in str(err.value) and "[0." not in str(err.value)


def test_conjugate_gradient_budget_and_forbidden_solvers():
    mine = sol("09")["my_conjugate_gradient"]
    assert "pass" in checks.check_conjugate_gradient(mine, seed=2)

    def by_columns(mv, b, tol, it):  # builds the matrix, one product per column, solves by eigh (not a forbidden solver)
        a = np.stack([np.asarray(mv(e)) for e in jnp.eye(len(b))], 1).astype(float)
        w, v = np.linalg.eigh(a)
        return jnp.asarray(v @ (v.T @ np.asarray(b, float) / w))

    with pytest.raises(checks.CheckFailed, match="never the whole matrix"):
        checks.check_conjugate_gradient(by_columns)
    with pytest.raises(checks.CheckFailed, match="concrete vector"):  # vmap hides the count
        checks.check_conjugate_gradient(lambda mv, b, tol, it: jnp.linalg.lstsq(jax.vmap(mv)(jnp.eye(len(b))).T, b)[0])
    from jax.scipy.sparse.linalg import cg

    with pytest.raises(checks.CheckFailed, match="write it yourself"):
        checks.check_conjugate_gradient(lambda mv, b, tol, it: cg(mv, b, tol=tol, maxiter=it)[0])
    for solver in (np.linalg.lstsq, jnp.linalg.lstsq, np.linalg.pinv, jnp.linalg.pinv):  # on the matrix built by columns
        def by_solver(mv, b, tol, it, solver=solver):
            a = jnp.stack([mv(e) for e in jnp.eye(len(b), dtype=b.dtype)], 1)
            out = solver(a, b) if "lstsq" in solver.__name__ else solver(a) @ b
            return out[0] if isinstance(out, tuple) else out

        with pytest.raises(checks.CheckFailed, match="write it yourself"):
            checks.check_conjugate_gradient(by_solver)


# ---------------------------------------------------------------- every check


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


def _permutation_subsets(v, n, rng, n_permutations):  # random coalitions instead of orders: not efficient
    m = rng.uniform(size=(n_permutations, n)) < 0.5
    return np.array([np.mean(np.asarray(v(m | (np.arange(n) == i))) - np.asarray(v(m & (np.arange(n) != i)))) for i in range(n)])


def _weighted_ridge_unweighted_means(z, y, w, alpha):
    zm, ym = z.mean(0), y.mean()
    zc, yc = z - zm, y - ym
    coef = np.linalg.solve(zc.T @ (w[:, None] * zc) + alpha * np.eye(z.shape[1]), zc.T @ (w * yc))
    return coef, ym - zm @ coef


def _window_sum(f, x, window):  # adds the drops of the covering windows instead of averaging
    n = int((np.asarray(x).argmax(-1) > 0).sum())
    w = min(window, n)
    covered = (np.arange(n)[None] >= np.arange(n - w + 1)[:, None]) & (np.arange(n)[None] < np.arange(n - w + 1)[:, None] + w)
    deleted = np.zeros((len(covered), x.shape[0]), bool)
    deleted[:, :n] = covered
    batch = jnp.where(jnp.asarray(deleted)[:, :, None], jnp.zeros(21).at[0].set(1.0), x[None])
    logits = np.asarray(f(jnp.concatenate([x[None], batch])))
    return ((logits[0] - logits[1:])[:, None] * covered).sum(0)


def _class_difference_unpooled(sequences, labels):
    from helpers.sequences import AMINO_ACIDS

    frac = np.array([[s.count(a) / len(s) for a in AMINO_ACIDS] for s in sequences])
    labels = np.asarray(labels)
    return 100 * (frac[labels == 1].mean(0) - frac[labels == 0].mean(0))


def _descriptors_degrees(seq):
    from helpers.sequences import KYTE_DOOLITTLE

    h = np.array([KYTE_DOOLITTLE[a] for a in seq])
    angle = np.arange(len(seq)) * 100.0
    charge = sum(seq.count(a) for a in "KR") - sum(seq.count(a) for a in "DE")
    return charge, h.mean(), abs((h * np.exp(1j * angle)).sum()) / len(seq)


def _cases():
    from scipy.stats import rankdata

    def nearest(lo, st, v, x):
        k = np.clip(np.round((x - lo) / st).astype(int), 0, v.shape[1] - 1)
        return v[np.arange(v.shape[0]), k]

    def argsort_ranks(a, b):
        return float(np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1])

    def trapezoid_unhalved(steps, rule):
        if rule != "trapezoid":
            return sol("03")["my_path_rule"](steps, rule)
        return np.arange(steps + 1) / steps, np.full(steps + 1, 1 / steps)

    s = sol
    return [
        (checks.check_mcc, s("01")["my_mcc"], lambda y, p: float(np.mean(y == p)), "MCC is off"),
        (checks.check_finite_differences, s("02")["my_finite_difference_gradient"],
         lambda f, x, eps: _fd(f, x, eps, central=False), "one-sided difference"),
        (checks.check_path_rule, s("03")["my_path_rule"], trapezoid_unhalved, "must sum to 1"),
        (checks.check_clip_renormalise, s("04")["my_clip_renormalise"],
         lambda x: jnp.clip(x, 0, None) / jnp.clip(x, 0, None).sum(), "divide each position|NaN"),
        (checks.check_smoothgrad, s("04")["my_smoothgrad"],
         lambda f, x, key, n, sigma: _smoothgrad(f, x, key, n, sigma, everywhere=False), "more than sampling explains"),
        (checks.check_rescale_multiplier, s("05")["my_rescale_multiplier"], lambda act, z, z0: jax.vmap(jax.grad(act))(z), "secant"),
        (checks.check_deeplift_dense, s("05")["my_deeplift_dense"],
         lambda w1, w2, x, x0: (x - x0) * jax.grad(lambda v: jnp.tanh(v @ w1) @ w2)(x), "sum"),
        (checks.check_window_occlusion, s("06")["my_window_occlusion"], _window_sum, "average"),
        (checks.check_permutation_shapley, s("07")["my_permutation_shapley"], _permutation_subsets, "efficiency"),
        (checks.check_weighted_ridge, s("08")["my_weighted_ridge"], _weighted_ridge_unweighted_means, "weighted"),
        (checks.check_lime_least_squares, s("08")["my_lime_least_squares"],
         lambda f, x, rng, n, w: -s("08")["my_lime_least_squares"](f, x, rng, n, w), "recover each residue"),
        (checks.check_hvp, s("09")["my_hvp"], lambda loss, t, v: jax.grad(loss)(t) * v, "jax.jvp of jax.grad"),
        (checks.check_conjugate_gradient, s("09")["my_conjugate_gradient"],
         lambda mv, b, tol, it: s("09")["my_conjugate_gradient"](mv, b, tol, 2), "residual"),
        (checks.check_best_substitution, s("10")["my_best_substitution"],
         lambda f, q: (s("10")["my_best_substitution"](f, q)[0] - 1,) + s("10")["my_best_substitution"](f, q)[1:], "count from 1"),
        (checks.check_centre_shapes, s("11")["my_centre"], lambda tg, td, b: (tg - td.mean(0), b), "bias must absorb"),
        (checks.check_table_lookup, s("11")["my_table_lookup"], nearest, "halfway"),
        (checks.check_mimic_tree, s("12")["my_mimic_tree"],
         lambda y, x, leaf: (s("12")["my_mimic_tree"](y, x, leaf)[0], s("12")["my_mimic_tree"](y, x, leaf)[1] + 1), "not the leaf"),
        (checks.check_spearman, s("13")["my_spearman"], argsort_ranks, "mean of the ranks"),
        (checks.check_helix_descriptors, s("14")["my_helix_descriptors"], _descriptors_degrees, "radians"),
        (checks.check_class_difference, s("14")["my_class_difference"], _class_difference_unpooled, "pool the residues"),
        (checks.check_auroc, s("01")["my_auroc"], lambda y, sc: 1.0 - s("01")["my_auroc"](y, sc), "AUROC is off"),
        (checks.check_edit_distance, s("10")["my_edit_distance"], lambda a, b: abs(len(a) - len(b)), "too small"),
    ]


@pytest.mark.parametrize("case", range(22))
def test_check_passes_correct_and_fails_stub_and_mistake(case):
    check, correct, mistake, message = _cases()[case]
    assert "pass" in check(correct)
    assert "pass" in check(correct, seed=11)  # a grading variant
    with pytest.raises(checks.CheckFailed, match="not written yet"):
        check(_stub)
    with pytest.raises(checks.CheckFailed, match=message):
        check(mistake)
    with pytest.raises(checks.CheckFailed, match=message):
        check(mistake, seed=11)


def test_every_chapter_check_is_listed_and_follows_the_convention():
    import inspect

    from helpers.course.checks import CHECKS

    names = {e.check for e in exercises.all_exercises([exercises.ROOT / "chapters" / f"{c}.ipynb" for c in BOOK])}
    assert names <= set(CHECKS) and len(names) == 28
    for name in names:
        params = inspect.signature(getattr(checks, name)).parameters
        assert params["seed"].kind is inspect.Parameter.KEYWORD_ONLY and params["seed"].default is None


# ---------------------------------------------------------------- float32 answers, inputs edited in place


def _auroc_jnp(y, s):
    y, s = jnp.asarray(y), jnp.asarray(s)
    pos, neg = s[y == 1], s[y == 0]
    return jnp.mean((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :]))


def _mcc_jnp(y, p):
    y, p = jnp.asarray(y), jnp.asarray(p)
    tp, tn = jnp.sum((y == 1) & (p == 1)), jnp.sum((y == 0) & (p == 0))
    fp, fn = jnp.sum((y == 0) & (p == 1)), jnp.sum((y == 1) & (p == 0))
    d = jnp.sqrt(1.0 * (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return jnp.where(d == 0, 0.0, (tp * tn - fp * fn) / jnp.where(d == 0, 1.0, d))


def _ridge_jnp(z, y, w, alpha):
    z, y, w = (jnp.asarray(a) for a in (z, y, w))
    zm, ym = (w @ z) / w.sum(), (w @ y) / w.sum()
    zc, yc = z - zm, y - ym
    coef = jnp.linalg.solve(zc.T @ (w[:, None] * zc) + alpha * jnp.eye(z.shape[1]), zc.T @ (w * yc))
    return coef, ym - zm @ coef


def _spearman_jnp(a, b):
    from jax.scipy.stats import rankdata

    ra, rb = rankdata(jnp.asarray(a, jnp.float32)), rankdata(jnp.asarray(b, jnp.float32))
    return jnp.corrcoef(ra, rb)[0, 1]


@pytest.mark.parametrize(("check", "answer"), [("check_auroc", _auroc_jnp), ("check_mcc", _mcc_jnp),
                                               ("check_weighted_ridge", _ridge_jnp), ("check_spearman", _spearman_jnp)])
def test_correct_float32_answers_pass(check, answer):
    """Right answers written in jax.numpy (float32, the course's default) pass: the
    tolerances are set by what float32 can do, not by float64 round-off."""
    for seed in (None, 11, 12, 13):
        assert "pass" in getattr(checks, check)(answer, seed=seed)


def test_inputs_edited_in_place_do_not_change_the_expected_values():
    """The student's function gets copies: zeroing the scores or copying the labels into the
    predictions cannot make the reference agree with a wrong answer."""
    def zero_scores(y, s):
        s[...] = 0.0
        return 0.5

    def predictions_from_labels(y, p):
        p[...] = y
        return 1.0

    with pytest.raises(checks.CheckFailed, match="off by"):
        checks.check_auroc(zero_scores, seed=3)
    with pytest.raises(checks.CheckFailed, match="off by"):
        checks.check_mcc(predictions_from_labels)
    y, s = np.array([0, 1, 0, 1]), np.array([0.1, 0.3, 0.4, 0.9])
    _common._stub_or(zero_scores, y, s, what="x")
    assert s.tolist() == [0.1, 0.3, 0.4, 0.9]  # the caller's array is untouched


# ---------------------------------------------------------------- named mistakes (issue 19)


def _ig_rule(alphas, weights=None, sign=1.0):
    """An IG with its own quadrature points `alphas(steps)` and weights (default 1 / K each)."""

    def ig(f, x, b, steps):
        a = alphas(steps)
        w = jnp.full(len(a), 1.0 / len(a)) if weights is None else weights(steps)
        path = b[None] + a[:, None, None] * (x - b)[None]
        grads = jax.vmap(jax.grad(lambda z: f(z[None])[0]))(path)
        return sign * (x - b) * jnp.tensordot(w, grads, 1)

    return ig


def _zero_fill_occlusion(f, x):
    n = int((np.asarray(x).argmax(-1) > 0).sum())
    logits = np.asarray(f(jnp.stack([x] + [x.at[i].set(0.0) for i in range(n)])))
    return logits[0] - logits[1:]


def _shapley_per_coalition(v, n):
    masks = np.array(list(itertools.product([False, True], repeat=n)))
    values = np.array([float(v(m[None])[0]) for m in masks])  # 2^n calls of one coalition each
    return sol("07")["my_shapley"](lambda m: values[np.asarray(m, int) @ (1 << np.arange(n))[::-1]], n)


def _conjugate_gradient_stops_at_once(mv, b, tol, maxiter):  # checks |r| < tol before the first step: r = b, x = 0
    return sol("09")["my_conjugate_gradient"](mv, b, tol, 1)


MISTAKES = [  # (check, mistake, the sentence that names it)
    (checks.check_integrated_gradients, _ig_rule(lambda k: jnp.linspace(0.0, 1.0, k)), "jnp.linspace"),
    (checks.check_integrated_gradients, _ig_rule(lambda k: (jnp.arange(64) + 0.5) / 64), "not the `steps` = 4"),
    (checks.check_integrated_gradients, _ig_rule(lambda k: jnp.arange(k) / k), "left Riemann"),
    (checks.check_integrated_gradients, _ig_rule(lambda k: (jnp.arange(k) + 0.5) / k, sign=-1.0), "sign flipped"),
    (checks.check_integrated_gradients, _ig_rule(lambda k: (jnp.arange(k) + 0.5) / k, weights=lambda k: jnp.ones(k)),
     "64 times the right answer.*sum where a mean belongs"),
    (checks.check_integrated_gradients, lambda f, x, b, steps: None, "returned None.*`return`"),
    (checks.check_occlusion, _zero_fill_occlusion, "matches filling with zeros"),
    (checks.check_occlusion, lambda f, x: -sol("06")["my_occlusion"](f, x), "sign flipped"),
    (checks.check_shapley, lambda v, n: sol("07")["my_shapley"](lambda m: v(np.asarray(m)[:, ::-1]), n),
     "right ones on the wrong players"),
    (checks.check_shapley, lambda v, n: -sol("07")["my_shapley"](v, n), "sign flipped"),
    (checks.check_shapley, _shapley_per_coalition, "called the game 32 times.*one call"),
    (checks.check_permutation_shapley,
     lambda v, n, rng, p: sol("07")["my_permutation_shapley"](lambda m: np.concatenate([v(m), v(m)])[: len(m)], n, rng, p),
     "called the game 2 times on .* coalitions|one call"),
    (checks.check_conjugate_gradient, _conjugate_gradient_stops_at_once, "wrong stopping rule"),
    (checks.check_auroc, lambda y, s: None, "returned None"),
]


@pytest.mark.parametrize("case", range(len(MISTAKES)))
def test_each_named_mistake_gets_its_own_sentence(case):
    check, mistake, sentence = MISTAKES[case]
    with pytest.raises(checks.CheckFailed, match=sentence):
        check(mistake)


@pytest.mark.parametrize(("check", "chapter", "name"), [
    (checks.check_integrated_gradients, "03", "my_integrated_gradients"), (checks.check_occlusion, "06", "my_occlusion"),
    (checks.check_shapley, "07", "my_shapley"), (checks.check_permutation_shapley, "07", "my_permutation_shapley")])
def test_stricter_checks_pass_the_book_answer_on_grading_cases(check, chapter, name):
    for seed in (None, 11, 12):
        assert "pass" in check(sol(chapter)[name], seed=seed)


def test_integer_answers_and_flipped_mcc_get_their_own_sentence():
    mine = sol("01")["my_auroc"]
    assert "pass" in checks.check_auroc(lambda y, s: mine(y, s))
    with pytest.raises(checks.CheckFailed, match="is an integer"):
        checks.check_auroc(lambda y, s: int(mine(y, s)))
    with pytest.raises(checks.CheckFailed, match="is an integer"):
        checks.check_mcc(lambda y, p: np.int64(sol("01")["my_mcc"](y, p)))
    with pytest.raises(checks.CheckFailed, match="sign flipped"):
        checks.check_mcc(lambda y, p: -sol("01")["my_mcc"](y, p))
