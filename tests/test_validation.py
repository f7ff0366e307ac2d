"""Bad input to every public function: a clear error that names the argument, or a right answer.

Issue 18, "no silent wrong answers". Each case below is one class of bad input for one
public function; `pytest.raises(..., match=...)` checks that the message names the argument
(for the model passed in, "the model f"). The model output contract is checked the same way
for every explainer (one shared validator, `helpers.validation.check_logits`). The "right
answer" cases check what is accepted instead of refused against an exact computation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import additive as AD
from helpers import attribution as A
from helpers import counterfactual as CF
from helpers import data as D
from helpers import evaluation as E
from helpers import influence as INF
from helpers import model as M
from helpers import perturbation as P
from helpers import sequences as S
from helpers import shapley as SH
from helpers import spectrum as SP
from helpers import influence_experiments as IX
from helpers import surrogate as SU

L = 12
PEPTIDE = "KLWKKLLKAL"  # n = 10 residues
X = S.encode(PEPTIDE, length=L)
XS = S.encode_batch(["KLW", "AAKR", "GIGK"], length=L)
KEY = jax.random.PRNGKey(0)
G = M.hydrophobicity_model()  # a right model: [B, L, 21] -> [B]
NAN_X = X.copy()
NAN_X[2, 3] = np.nan

# ----------------------------------------------------------------------------- the model contract

BAD_MODELS = {
    "[B,1]": (lambda x: G(x)[:, None], r"model f returned shape \(\d+, 1\).*drop the last axis"),
    "[B,2] probabilities": (lambda x: jax.nn.softmax(jnp.stack([G(x), -G(x)], 1)), r"model f returned shape \(\d+, 2\).*logits of shape \[B\], one per input"),
    "scalar": (lambda x: G(x).sum(), r"model f returned a scalar"),
    "wrong B": (lambda x: G(x[:1]), r"model f returned shape \(1,\) for a batch of"),
    "NaN": (lambda x: G(x) * jnp.nan, r"model f returned a non-finite logit"),
    "int": (lambda x: G(x).astype(jnp.int32), r"model f returned dtype int32"),
}

EXPLAINERS = {
    "saliency": lambda f: A.saliency(f, X),
    "gradient_x_input": lambda f: A.gradient_x_input(f, X),
    "gradients": lambda f: A.gradients(f, XS),
    "integrated_gradients": lambda f: A.integrated_gradients(f, X, steps=4),
    "smoothgrad": lambda f: A.smoothgrad(f, X, KEY, n=2),
    "smoothgrad/IG": lambda f: A.smoothgrad(f, X, KEY, n=2, method="integrated_gradients", steps=2),
    "expected_gradients": lambda f: A.expected_gradients(f, X, XS, KEY, samples=4),
    "deeplift_traced": lambda f: A.deeplift_traced(f, X),
    "occlusion": lambda f: P.occlusion(f, X),
    "occlusion/background": lambda f: P.occlusion(f, X, fill=XS),
    "make_game/delete": lambda f: P.make_game(f, X, baseline="delete"),
    "lime": lambda f: SU.lime(f, X, KEY, n_samples=40),
    "shapley_exact": lambda f: SH.shapley_exact(f, X, baseline="padding"),
    "banzhaf_exact": lambda f: SH.banzhaf_exact(f, X, baseline="padding"),
    "shapley_permutation": lambda f: SH.shapley_permutation(f, X, KEY, n_permutations=4, baseline="padding"),
    "kernel_shap": lambda f: SH.kernel_shap(f, X, KEY, n_samples=32, baseline="padding"),
    "faithfulness_curve": lambda f: E.faithfulness_curve(f, X, np.arange(10)),
    "road_curve": lambda f: E.road_curve(f, X, np.arange(10), KEY, samples=2),
    "substitution_scan": lambda f: CF.substitution_scan(f, PEPTIDE, length=L),
    "predict_sequences": lambda f: CF.predict_sequences(f, ["KLW", "AAK"], length=L),
    "search": lambda f: CF.search(f, PEPTIDE, max_edits=1, length=L),
}


@pytest.mark.parametrize("explainer", EXPLAINERS)
@pytest.mark.parametrize("bad", BAD_MODELS)
def test_model_output_contract(explainer, bad):
    f, match = BAD_MODELS[bad]
    with pytest.raises((ValueError, TypeError), match=match):
        EXPLAINERS[explainer](f)


def _linear_factory(act):
    w = M.hydropathy_weights()
    return jax.jit(lambda xb: act(jnp.einsum("bla,a->b", xb, w)))


def test_deeplift_refuses_a_factory_that_ignores_the_activation():
    def ignores(act):  # builds tanh(linear) whatever activation it is given
        return lambda xb: jnp.tanh(G(xb))

    with pytest.raises(ValueError, match=r"make_f ignored its activation argument.*\(tanh\)"):
        A.make_deeplift(ignores)(X)
    with pytest.raises(ValueError, match="make_f ignored"):
        A.deeplift(ignores, X)
    # a linear model has no activation to rewrite: ignoring it is right, DeepLIFT is exact
    res = A.deeplift(lambda act: G, X)
    np.testing.assert_allclose(res.attributions, X * M.hydropathy_weights(), atol=1e-6)


def test_deeplift_checks_the_factory_models_output():
    explain = A.make_deeplift(lambda act: (lambda xb: _linear_factory(act)(xb)[:, None]))
    with pytest.raises(ValueError, match=r"model make_f\(activation\) returned shape \(2, 1\)"):
        explain(X)


def test_deeplift_right_answer_with_an_honest_factory():
    # act = tanh of a linear score: the rescale rule is exact (summation to delta)
    res = A.make_deeplift(_linear_factory)(X)
    assert abs(res.gap) < 1e-5
    assert res.f_x == pytest.approx(float(jnp.tanh(G(X[None])[0])), abs=1e-6)


# ----------------------------------------------------------------------------- bad input, refused

F = G
FLAT_HVP = lambda v: 2.0 * v  # noqa: E731  (H = 2 I)
NAN_HVP = lambda v: v * jnp.nan  # noqa: E731
PARAMS = {"w": jnp.zeros(20), "b": jnp.zeros(())}
NAN_PARAMS = {"w": jnp.zeros(20).at[3].set(jnp.nan), "b": jnp.zeros(())}
FEAT = np.asarray(IX.composition_features(XS))
LAB = np.array([0, 1, 0])
NEVER_FLIPS = lambda x: G(x) * 0.0 + 5.0  # noqa: E731


def _cnn_init(**config):
    return M.make_model(**config).init(KEY, jnp.zeros((1, L, 21)))


BAD = [
    # --- non-finite values
    ("saliency/x NaN", lambda: A.saliency(F, NAN_X), "x contains NaN"),
    ("IG/baseline NaN", lambda: A.integrated_gradients(F, X, NAN_X), "baseline contains NaN"),
    ("make_baseline/mean empty train_x", lambda: A.make_baseline("mean", X, train_x=np.zeros((0, L, 21))), "train_x"),
    ("make_baseline/mean NaN train_x", lambda: A.make_baseline("mean", X, train_x=NAN_X[None]), "train_x contains NaN"),
    ("expected_gradients/references NaN", lambda: A.expected_gradients(F, X, NAN_X[None], KEY), "references"),
    ("deepshap/references NaN", lambda: A.deepshap(A.make_deeplift(_linear_factory), X, NAN_X[None]), "references contain"),
    ("per_residue/attributions NaN", lambda: A.per_residue(NAN_X, X), "attributions contains NaN"),
    ("occlusion/background NaN", lambda: P.occlusion(F, X, fill=NAN_X[None]), "background contains NaN"),
    ("shapley_from_values/v NaN", lambda: SH.shapley_from_values(np.full(8, np.nan), 3), "v contains NaN"),
    ("banzhaf_from_values/v NaN", lambda: SH.banzhaf_from_values(np.full(8, np.nan), 3), "v contains NaN"),
    ("solve_kernel/values NaN", lambda: SH.solve_kernel(np.eye(3, dtype=bool), np.ones(3), [0, np.nan, 1], 0.0, 1.0), "values contains NaN"),
    ("kernel_weights/distance NaN", lambda: SU.kernel_weights([0.1, np.nan], 0.25), "distance contains NaN"),
    ("credit_imbalance/scores NaN", lambda: E.credit_imbalance([1.0, np.nan], [True, False], [False, True]), "scores contains NaN"),
    ("road_inputs/key int", lambda: E.road_inputs(X, np.ones((1, 10), bool), 0), "key must be a JAX PRNG key"),
    ("road_inputs/samples float", lambda: E.road_inputs(X, np.ones((1, 10), bool), KEY, samples=2.0), "samples must be an integer"),
    ("curve_area NaN", lambda: E.curve_area([1.0, np.nan, 0.0]), "curve contains NaN"),
    ("normalised_area NaN", lambda: E.normalised_area([1.0, np.nan, 0.0], "deletion"), "curve contains NaN"),
    ("predict_fn/params NaN", lambda: M.predict_fn(jax.tree_util.tree_map(lambda a: a * jnp.nan, _cnn_init())), "params contain NaN"),
    ("conjugate_gradient/b NaN", lambda: INF.conjugate_gradient(FLAT_HVP, jnp.array([1.0, jnp.nan])), "b contains NaN"),
    ("conjugate_gradient/tol NaN", lambda: INF.conjugate_gradient(FLAT_HVP, jnp.ones(3), tol=float("nan")), "tol must be a finite"),
    ("conjugate_gradient/damping NaN", lambda: INF.conjugate_gradient(FLAT_HVP, jnp.ones(3), damping=float("nan")), "damping"),
    ("lissa/b NaN", lambda: INF.lissa(FLAT_HVP, jnp.array([1.0, jnp.nan]), scale=4.0), "b contains NaN"),
    ("lissa/scale NaN", lambda: INF.lissa(FLAT_HVP, jnp.ones(3), scale=float("nan")), "scale must be a finite"),
    ("make_objective/params NaN", lambda: INF.make_objective(IX.logistic_loss, NAN_PARAMS, FEAT, LAB), "params contain NaN"),
    ("make_objective/weight_decay NaN", lambda: INF.make_objective(IX.logistic_loss, PARAMS, FEAT, LAB, weight_decay=float("nan")), "weight_decay"),
    ("influence/params NaN", lambda: INF.influence(IX.logistic_loss, NAN_PARAMS, (FEAT, LAB), (FEAT, LAB)), "params contain NaN"),
    ("directional_derivatives/directions NaN", lambda: INF.directional_derivatives(IX.logistic_loss, PARAMS, FEAT, LAB, jnp.full(21, jnp.nan)), "directions contains NaN"),
    ("fit/weights NaN", lambda: INF.fit(IX.logistic_loss, PARAMS, FEAT, LAB, weights=[1.0, np.nan, 1.0]), "weights contains NaN"),
    ("tracin/learning rate NaN", lambda: INF.tracin(IX.logistic_loss, [PARAMS], [float("nan")], (FEAT, LAB), (FEAT, LAB)), "learning rate"),
    ("composition_features/x NaN", lambda: IX.composition_features(jnp.asarray(NAN_X[None])), "x contains NaN"),
    ("additive.fit/y_val NaN", lambda: AD.fit(AD.make_additive(1), np.zeros((8, 1)), np.zeros(8), key=KEY, x_val=np.zeros((2, 1)), y_val=[0.0, np.nan], epochs=1, batch_size=4), "y_val"),
    ("additive.toy_data/noise NaN", lambda: AD.toy_data(10, noise=float("nan")), "noise"),
    ("additive.to_tables/hi inf", lambda: AD.to_tables(lambda g: g, 0.0, [0.0], [np.inf]), "hi contains"),
    ("additive.shapes_from_predict/anchor NaN", lambda: AD.shapes_from_predict(lambda r: r.sum(1), np.zeros((3, 2)), np.ones((4, 2)), anchor=[0.0, np.nan]), "anchor contains NaN"),
    # --- degenerate sizes
    ("saliency/zero-length x", lambda: A.saliency(F, np.zeros((0, 21))), r"x must have shape \[L, 21\] with L >= 1"),
    ("decode/zero-length", lambda: S.decode(np.zeros((0, 21))), r"L >= 1"),
    ("gradients/batch_size 0", lambda: A.gradients(F, XS, batch_size=0), "batch_size must be an integer >= 1"),
    ("IG/steps 0", lambda: A.integrated_gradients(F, X, steps=0), "steps"),
    ("IG/batch_size 0", lambda: A.integrated_gradients(F, X, batch_size=0), "batch_size"),
    ("smoothgrad/negative sigma", lambda: A.smoothgrad(F, X, KEY, sigma=-0.1), "sigma must be >= 0"),
    ("smoothgrad/n 0", lambda: A.smoothgrad(F, X, KEY, n=0), "n must be an integer >= 1"),
    ("rescale_activation/eps 0", lambda: A.rescale_activation(jnp.tanh, eps=0.0), "eps must be > 0"),
    ("make_deeplift/eps negative", lambda: A.make_deeplift(_linear_factory, eps=-1e-6), "eps must be > 0"),
    ("deeplift_traced/eps 0", lambda: A.deeplift_traced(F, X, eps=0.0), "eps must be > 0"),
    ("make_game/batch_size 0", lambda: P.make_game(F, X, baseline="padding", batch_size=0), "batch_size"),
    ("window_masks/n 0", lambda: P.window_masks(0, 1), "n must be an integer >= 1"),
    ("occlusion/window 0", lambda: P.occlusion(F, X, window=0), "window"),
    ("lime/n_samples too few", lambda: SU.lime(F, X, KEY, n_samples=5), "n_samples"),
    ("kernel_shap/n_samples too few", lambda: SH.kernel_shap(F, X, KEY, n_samples=3, baseline="padding"), "n_samples"),
    ("shapley_permutation/n_permutations 2", lambda: SH.shapley_permutation(F, X, KEY, n_permutations=2, baseline="padding"), "n_permutations"),
    ("shapley_weights/n 0", lambda: SH.shapley_weights(0), "n must be an integer >= 1"),
    ("shapley_from_values/n 0", lambda: SH.shapley_from_values(np.zeros(1), 0), "n must be an integer >= 1"),
    ("kernel_coalitions/n 1", lambda: SH.kernel_coalitions(1, 10, KEY), "n must be an integer >= 2"),
    ("solve_kernel/no coalitions", lambda: SH.solve_kernel(np.zeros((0, 3), bool), np.zeros(0), np.zeros(0), 0.0, 1.0), "masks"),
    ("kernel_weights/width 0", lambda: SU.kernel_weights([0.1], 0.0), "kernel_width must be > 0"),
    ("kernel_weights/width negative", lambda: SU.kernel_weights([0.1], -0.25), "kernel_width must be > 0"),
    ("sample_masks/n_samples 0", lambda: SU.sample_masks(KEY, 5, 0), "n_samples"),
    ("select_features/k negative", lambda: SU.select_features(np.ones((4, 2)), np.zeros(4), np.ones(4), -1), "k must be"),
    ("search/max_edits 0", lambda: CF.search(F, PEPTIDE, max_edits=0, length=L), "max_edits"),
    ("search/beam_width 0", lambda: CF.search(F, PEPTIDE, beam_width=0, length=L), "beam_width"),
    ("search/batch_size 0", lambda: CF.search(F, PEPTIDE, batch_size=0, length=L), "batch_size"),
    ("predict_sequences/batch_size 0", lambda: CF.predict_sequences(F, ["KLW"], batch_size=0), "batch_size"),
    ("per_example_grads/batch_size 0", lambda: INF.per_example_grads(IX.logistic_loss, PARAMS, FEAT, LAB, batch_size=0), "batch_size"),
    ("conjugate_gradient/maxiter 0", lambda: INF.conjugate_gradient(FLAT_HVP, jnp.ones(3), maxiter=0), "maxiter"),
    ("conjugate_gradient/empty b", lambda: INF.conjugate_gradient(FLAT_HVP, jnp.ones(0)), r"b must be \[P\]"),
    ("lissa/depth 0", lambda: INF.lissa(FLAT_HVP, jnp.ones(3), scale=4.0, depth=0), "depth"),
    ("lanczos/steps 0", lambda: SP.lanczos(FLAT_HVP, 3, KEY, steps=0), "steps"),
    ("extreme_eigenvalues/iters 0", lambda: SP.extreme_eigenvalues(FLAT_HVP, 3, KEY, iters=0), "iters"),
    ("HemolysisCNN/channels 0", lambda: _cnn_init(channels=0), "channels"),
    ("hydropathy_weights/scale 0", lambda: M.hydropathy_weights(0.0), "scale must not be 0"),
    ("explainers/ig_steps 0", lambda: E.explainers(F, ig_steps=0), "ig_steps"),
    ("additive.fit/epochs 0", lambda: AD.fit(AD.make_additive(1), np.zeros((8, 1)), np.zeros(8), key=KEY, epochs=0), "epochs"),
    ("additive.fit/learning_rate 0", lambda: AD.fit(AD.make_additive(1), np.zeros((8, 1)), np.zeros(8), key=KEY, learning_rate=0.0), "learning_rate"),
    ("assign_splits/two fractions", lambda: D.assign_splits(["KLW"], [1], fractions=(0.5, 0.5)), "fractions"),
    # --- types
    ("predict_sequences/single string", lambda: CF.predict_sequences(F, "KLWKKLL", length=L), "single string"),
    ("composition/single string", lambda: S.composition("KLWKKLL"), "single string"),
    ("pooled_composition/single string", lambda: S.pooled_composition("KLWKKLL"), "single string"),
    ("descriptors/single string", lambda: S.descriptors("KLWKKLL"), "single string"),
    ("assign_splits/single string", lambda: D.assign_splits("KLK", [0, 1, 0]), "single string"),
    ("composition/non-string item", lambda: S.composition(["KLW", 5]), "sequence #1"),
    ("descriptors/non-string item", lambda: S.descriptors(["KLW", None]), "sequence #1"),
    ("composition/empty item", lambda: S.composition(["KLW", ""]), "sequence #1: empty"),
    ("smoothgrad/sigma string", lambda: A.smoothgrad(F, X, KEY, sigma="0.1"), "sigma must be a real number"),
    ("lime/kernel_width string", lambda: SU.lime(F, X, KEY, kernel_width="0.25"), "kernel_width must be a real number"),
    ("lime/alpha negative", lambda: SU.lime(F, X, KEY, alpha=-1.0), "alpha"),
    ("IG/steps string", lambda: A.integrated_gradients(F, X, steps="8"), "steps"),
    ("hydropathy_weights/scale string", lambda: M.hydropathy_weights("10"), "scale must be a real number"),
    ("toy_data/noise string", lambda: AD.toy_data(10, noise="1"), "noise must be a real number"),
    ("search/max_edits string", lambda: CF.search(F, PEPTIDE, max_edits="2", length=L), "max_edits must be an integer"),
    ("search/max_edits float", lambda: CF.search(F, PEPTIDE, max_edits=2.0, length=L), "max_edits must be an integer"),
    ("search/operations single string", lambda: CF.search(F, PEPTIDE, operations="sub", length=L), "operations"),
    ("search/frozen float", lambda: CF.search(F, PEPTIDE, frozen=[1.5], length=L), "frozen position must be an integer"),
    ("search/frozen int", lambda: CF.search(F, PEPTIDE, frozen=3, length=L), "frozen must be a collection"),
    ("neighbours/lower-case alphabet", lambda: CF.neighbours("KLW", alphabet="ak"), "alphabet"),
    ("neighbours/operations typo", lambda: CF.neighbours("KLW", operations=("su",)), "operations"),
    ("substitution_scan/length string", lambda: CF.substitution_scan(F, PEPTIDE, length="12"), "length must be a positive integer"),
    ("edit_distance/non-string", lambda: CF.edit_distance("KLW", ["K", "L"]), "b must be a peptide string"),
    ("flipping_substitutions/not a scan", lambda: CF.flipping_substitutions((PEPTIDE, 0.0, np.zeros((10, 20)))), "scan must be"),
    ("gradients/batch_size float", lambda: A.gradients(F, XS, batch_size=2.5), "batch_size must be an integer"),
    ("make_game/batch_size float", lambda: P.make_game(F, X, baseline="padding", batch_size=8.0), "batch_size must be an integer"),
    ("make_game/length float", lambda: P.make_game(F, X, baseline="padding", length=10.5), "length must be an integer"),
    ("per_example_grads/batch_size float", lambda: INF.per_example_grads(IX.logistic_loss, PARAMS, FEAT, LAB, batch_size=2.5), "batch_size must be an integer"),
    ("make_hvp/batch_size float", lambda: INF.make_hvp(IX.logistic_loss, PARAMS, FEAT, LAB, batch_size=2.5), "batch_size must be an integer"),
    ("removal_weights/float indices", lambda: INF.removal_weights(3, [1.5]), "removed must hold integer"),
    ("faithfulness_curve/float order", lambda: E.faithfulness_curve(F, X, np.arange(10.0)), "order must hold integer"),
    ("toy_data/n float", lambda: AD.toy_data(10.0), "n must be an integer"),
    ("to_tables/points float", lambda: AD.to_tables(lambda g: g, 0.0, [0.0], [1.0], points=2.5), "points must be an integer"),
    ("expected_gradients/key int", lambda: A.expected_gradients(F, X, XS, 0), "key must be a JAX PRNG key"),
    ("smoothgrad/key int", lambda: A.smoothgrad(F, X, 0), "key must be a JAX PRNG key"),
    ("additive.fit/key int", lambda: AD.fit(AD.make_additive(1), np.zeros((8, 1)), np.zeros(8), key=0), "key must be a JAX PRNG key"),
    ("lanczos/key int", lambda: SP.lanczos(FLAT_HVP, 3, 0), "key must be a JAX PRNG key"),
    ("splice/fractional masks", lambda: P.splice(X, np.full((1, 10), 0.5)), "masks must be boolean"),
    ("game/fractional masks", lambda: P.make_game(F, X, baseline="padding")(np.full((1, 10), 0.5)), "masks must be boolean"),
    ("occlusion/fill of strings", lambda: P.occlusion(F, X, fill=["padding"]), "fill must be a real numeric array"),
    ("saliency/x of strings", lambda: A.saliency(F, [["a"] * 21] * L), "x must be a real numeric array"),
    ("indices_to_strings/float codes", lambda: S.indices_to_strings(np.array([[1.5, 0.0]])), "idx"),
    ("indices_to_strings/gap", lambda: S.indices_to_strings(np.array([[1, 0, 12]])), "padding must be trailing"),
    ("lengths/wrong shape", lambda: S.lengths(np.zeros((4, 5))), r"x: expected one-hot"),
    ("num_residues/1-D", lambda: A.num_residues(np.zeros(21)), r"x must have shape \[L, 21\]"),
    ("additive.fit/bce labels", lambda: AD.fit(AD.make_additive(1), np.zeros((8, 1)), np.full(8, 2.0), key=KEY, loss="bce"), "labels 0 or 1"),
    ("assign_splits/labels 2", lambda: D.assign_splits(["KLW", "AAK"], [0, 2]), "labels must be 0 or 1"),
    ("predict_fn/params not a dict", lambda: M.predict_fn([1.0]), "params must be"),
    ("make_deeplift/make_f not callable", lambda: A.make_deeplift(G(X[None])), "make_f must be a function"),
    # --- one vocabulary of baseline names
    ("IG/baseline 'delete'", lambda: A.integrated_gradients(F, X, "delete"), "baseline='delete' is not available here"),
    ("IG/baseline 'mean'", lambda: A.integrated_gradients(F, X, "mean"), "baseline='mean' is not available here: it needs the training set"),
    ("IG/baseline unknown", lambda: A.integrated_gradients(F, X, "paddding"), "unknown baseline 'paddding'"),
    ("occlusion/fill 'uniform'", lambda: P.occlusion(F, X, fill="uniform"), "fill='uniform' is not available here"),
    ("make_baseline/'delete'", lambda: A.make_baseline("delete", X), "kind='delete'"),
    ("make_baseline/not a name", lambda: A.make_baseline(0, X), "kind must be a baseline name"),
    # --- text: validated before any case-folding, non-ASCII refused with its position
    ("encode/sharp s", lambda: S.encode("KLß"), r"non-ASCII character 'ß' \(U\+00DF\) at position 3"),
    ("encode/ligature fi", lambda: S.encode("GIGKﬁ"), r"non-ASCII character 'ﬁ' \(U\+FB01\) at position 5"),
    ("encode/dotless i", lambda: S.encode("kıl"), r"non-ASCII character 'ı' \(U\+0131\) at position 2"),
    ("encode/position in the original string", lambda: S.encode("  KLſ"), r"'ſ' \(U\+017F\) at position 5 of the input"),
    ("encode_batch/non-ASCII item", lambda: S.encode_batch(["KLW", "AİK"]), r"sequence #1: non-ASCII character 'İ' \(U\+0130\) at position 2"),
    ("predict_sequences/non-ASCII", lambda: CF.predict_sequences(F, ["KLW", "ﬀK"], length=L), r"sequence #1: non-ASCII"),
    ("search/non-ASCII", lambda: CF.search(F, "KLWKKLLKAß", length=L), "position 10"),
    # --- work that explodes: refused up front with the count and a way out
    ("search/level too large", lambda: CF.search(NEVER_FLIPS, PEPTIDE, max_edits=3, beam_width=None, length=L, max_candidates=10_000),
     r"search level 2 would hold more than 10,000 candidate peptides \(up to [\d,]+, from.*set beam_width"),
    ("all_coalitions/too many players", lambda: SH.all_coalitions(40), r"2\^40 = 1,099,511,627,776 coalitions"),
    ("kernel_shap/n_samples huge", lambda: SH.kernel_shap(F, X, KEY, n_samples=10**9, baseline="padding"), "n_samples = 1,000,000,000"),
    ("shapley_exact/max_players huge", lambda: SH.shapley_exact(F, X, baseline="padding", max_players=60), "max_players"),
]


@pytest.mark.parametrize("thunk, match", [pytest.param(t, m, id=i) for i, t, m in BAD])
def test_bad_input_is_refused_clearly(thunk, match):
    with pytest.raises((ValueError, TypeError), match=match):
        thunk()


# An iterative solver must not report convergence on NaN; a dense solve must not return NaN.
def _IGNORED_PARAM_LOSS(params, x, y):  # logistic loss of w . x; params["unused"] never enters
    z = x @ params["w"]
    return jnp.logaddexp(0.0, z) - y * z


_IGNORED_PARAMS = {"w": jnp.array([0.3, -0.2], jnp.float32), "unused": jnp.zeros(1, jnp.float32)}
_TINY = (jnp.array([[1.0, 0.5], [-0.3, 1.0], [0.7, -1.2]], jnp.float32), jnp.array([1.0, 0.0, 1.0], jnp.float32))

SOLVER_NAN = [
    ("conjugate_gradient/hvp NaN", lambda: INF.conjugate_gradient(NAN_HVP, jnp.ones(3)), "conjugate gradients produced NaN"),
    ("conjugate_gradient/batched hvp NaN", lambda: INF.conjugate_gradient(NAN_HVP, jnp.ones((2, 3))), "conjugate gradients produced NaN"),
    ("extreme_eigenvalues/hvp NaN", lambda: SP.extreme_eigenvalues(NAN_HVP, 3, KEY, iters=3), "power iteration produced NaN"),
    ("lanczos/hvp NaN", lambda: SP.lanczos(NAN_HVP, 3, KEY, steps=2), "Lanczos produced NaN"),
    ("lissa/hvp NaN", lambda: INF.lissa(NAN_HVP, jnp.ones(3), scale=4.0, depth=3), "LiSSA diverged"),
    # a parameter the loss ignores: the exact Hessian is singular, and without damping a dense
    # solve would return inf/NaN (or a non-solution) silently
    ("influence exact/singular Hessian", lambda: INF.influence(_IGNORED_PARAM_LOSS, _IGNORED_PARAMS, _TINY, _TINY, solver="exact"), "dense solve"),
    ("self_influence/singular Hessian", lambda: INF.self_influence(_IGNORED_PARAM_LOSS, _IGNORED_PARAMS, *_TINY), "dense solve"),
]


@pytest.mark.parametrize("thunk, match", [pytest.param(t, m, id=i) for i, t, m in SOLVER_NAN])
def test_solvers_do_not_converge_on_nan(thunk, match):
    with pytest.raises(FloatingPointError, match=match):
        thunk()


# ----------------------------------------------------------------------------- accepted: right answers


def _same(a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)
    return True


RIGHT = [
    # int and bool one-hot arrays are accepted and give the float answer
    ("saliency/int one-hot", lambda: _same(A.saliency(F, X.astype(int)), A.saliency(F, X))),
    ("IG/bool one-hot", lambda: _same(A.integrated_gradients(F, X.astype(bool), steps=4).attributions,
                                      A.integrated_gradients(F, X, steps=4).attributions)),
    ("occlusion/int one-hot", lambda: _same(P.occlusion(F, X.astype(np.int64)), P.occlusion(F, X))),
    ("decode/int one-hot", lambda: S.decode(X.astype(int)) == PEPTIDE),
    # the linear model: saliency is the hydropathy weights at every position
    ("saliency/exact", lambda: _same(A.saliency(F, X), np.broadcast_to(M.hydropathy_weights(), (L, 21)))),
    # one vocabulary: named baselines in IG are make_baseline's arrays; 'zero' == 'zeros'
    ("IG/baseline 'padding'", lambda: _same(A.integrated_gradients(F, X, "padding", steps=4).attributions,
                                            A.integrated_gradients(F, X, A.make_baseline("padding", X), steps=4).attributions)),
    ("IG/baseline 'zeros'", lambda: _same(A.integrated_gradients(F, X, "zeros", steps=4).attributions,
                                          A.integrated_gradients(F, X, steps=4).attributions)),
    ("IG/baseline 'uniform'", lambda: _same(A.integrated_gradients(F, X, "uniform", steps=4).attributions,
                                            A.integrated_gradients(F, X, A.make_baseline("uniform", X), steps=4).attributions)),
    ("make_baseline/'zeros'", lambda: _same(A.make_baseline("zeros", X), A.make_baseline("zero", X))),
    ("occlusion/fill 'zero'", lambda: _same(P.occlusion(F, X, fill="zero"), P.occlusion(F, X, fill="zeros"))),
    # empty batches: an empty answer of the right shape
    ("gradients/empty batch", lambda: A.gradients(F, np.zeros((0, L, 21))).shape == (0, L, 21)),
    ("predict_sequences/empty", lambda: CF.predict_sequences(F, [], length=L).shape == (0,)),
    ("composition/empty", lambda: S.composition([]).shape == (0, 20)),
    ("descriptors/empty", lambda: S.descriptors([]).shape == (0, 8)),
    ("decode_batch/empty", lambda: S.decode_batch(np.zeros((0, L, 21))) == []),
    ("game/no coalitions", lambda: P.make_game(F, X, baseline="padding")(np.zeros((0, 10), bool)).shape == (0,)),
    # 0/1 integer masks are coalitions
    ("game/0-1 masks", lambda: _same(P.make_game(F, X, baseline="padding")(np.eye(10, dtype=int)),
                                     P.make_game(F, X, baseline="padding")(np.eye(10, dtype=bool)))),
    # numpy integers are integers; a jnp scalar is a number
    ("IG/numpy steps", lambda: _same(A.integrated_gradients(F, X, steps=np.int64(4)).attributions,
                                     A.integrated_gradients(F, X, steps=4).attributions)),
    ("smoothgrad/jnp sigma", lambda: _same(A.smoothgrad(F, X, KEY, n=2, sigma=jnp.float32(0.1)),
                                           A.smoothgrad(F, X, KEY, n=2, sigma=0.1))),
    # the exhaustive search still runs where levels stay small
    ("search/exhaustive small", lambda: CF.search(lambda x: G(x) - 0.5, "KLW", max_edits=2, beam_width=None, length=L).exact),
    # lower-case input is still accepted (ASCII), and whitespace stripped
    ("encode/lower case", lambda: _same(S.encode(" klw ", length=L), S.encode("KLW", length=L))),
]


@pytest.mark.parametrize("thunk", [pytest.param(t, id=i) for i, t in RIGHT])
def test_accepted_input_gives_the_right_answer(thunk):
    assert thunk()

