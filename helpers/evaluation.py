"""Judging explanations: faithfulness curves, sanity checks, and one table of methods.

Shape glossary: B batch, L padded length, A = 21 channels, n residues of one peptide.

- *Deletion* and *insertion* curves (Petsiuk et al. 2018, for residues): remove (or add)
  residues in the order an explanation ranks them and track the logit. A faithful ranking
  makes the deletion curve fall fast (small area) and the insertion curve rise fast (large
  area). Both are coalition games (`helpers.perturbation`), so one batched call per curve.
- *Cascading randomisation* (Adebayo et al. 2018): re-initialise the model's layers from
  the top down; an explanation that barely changes does not depend on what the model learned.
- *ROAD* (Rong et al. 2022): the same curves with removed residues *imputed* from their
  neighbours plus noise (noisy linear imputation), so that a removed residue leaves a real
  residue behind and the curve does not reward orders whose holes the model finds odd.
- `explainers`: every per-residue method of the course behind one signature, with its cost
  in model calls, so chapters compare them on equal terms.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from helpers import attribution, perturbation, shapley, surrogate, validation
from helpers.attribution import PredictFn

# The course CNN's modules from the output down, the order of cascading randomisation.
CNN_LAYERS_TOP_DOWN = (
    "hemolysis_cnn/logit",
    "hemolysis_cnn/dense1",
    "hemolysis_cnn/dense0",
    "hemolysis_cnn/~features/conv2",
    "hemolysis_cnn/~features/conv1",
    "hemolysis_cnn/~features/conv0",
)


# ----------------------------------------------------------------------------- orders and curves


def ranking(scores) -> np.ndarray:
    """Residue indices `[n]` from the highest score to the lowest (ties: earlier first)."""
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 1 or len(scores) == 0:
        raise ValueError(f"scores must be a non-empty [n] vector, got shape {scores.shape}")
    if not np.isfinite(scores).all():
        bad = int(np.flatnonzero(~np.isfinite(scores))[0])
        raise ValueError(f"scores contain NaN or infinity (first at residue {bad})")
    return np.argsort(-scores, kind="stable")


def _check_order(order, n: int) -> np.ndarray:
    order = np.asarray(order)
    if order.size and not np.issubdtype(order.dtype, np.integer):
        raise TypeError(f"order must hold integer residue indices, got dtype {order.dtype}")
    if order.shape != (n,) or sorted(order.tolist()) != list(range(n)):
        raise ValueError(f"order must be a permutation of the {n} residue indices 0..{n - 1}, got {order.tolist()}")
    return order


def curve_masks(order, kind: str) -> np.ndarray:
    """Coalitions `[n + 1, n]` (True = residue present): row k has the first k residues of
    `order` removed (`kind="deletion"`) or only they present (`"insertion"`)."""
    order = np.asarray(order)
    n = len(order)
    _check_order(order, n)
    rank = np.empty(n, int)
    rank[order] = np.arange(n)
    first_k = rank[None, :] < np.arange(n + 1)[:, None]  # [n + 1, n]: among the first k
    if kind == "deletion":
        return ~first_k
    if kind == "insertion":
        return first_k
    raise ValueError(f"kind must be 'deletion' or 'insertion', got {kind!r}")


def faithfulness_curve(f: PredictFn, x, order, *, kind: str = "deletion", fill="padding", length: int | None = None) -> np.ndarray:
    """The logits `[n + 1]` of peptide `x [L, A]` as the residues are deleted (or inserted)
    one at a time in `order`; absent residues are replaced as in `perturbation.occlusion`
    (`fill="padding"`: masked in place; `"delete"` splices them out). One batched model call."""
    game = perturbation.game_for_fill(f, x, fill, length=length)
    return np.asarray(game(curve_masks(_check_order(order, game.n), kind)), dtype=float)


def curve_area(curve) -> float:
    """Area under a curve `[n + 1]` over the fraction of residues moved, 0 to 1 (trapezoid)."""
    c = validation.as_float_array(curve, "curve").astype(float)
    if c.ndim != 1 or len(c) < 2:
        raise ValueError(f"a curve needs at least 2 points, got shape {c.shape}")
    validation.check_finite(c, "curve")
    return float(np.trapezoid(c, dx=1.0 / (len(c) - 1)))


def normalised_area(curve, kind: str) -> float:
    """`curve_area` of a deletion (first point = full peptide) or insertion (last point =
    full peptide) curve rescaled so that the full peptide is 1 and the empty one 0: a
    deletion area near 0 and an insertion area near 1 are best."""
    c = validation.as_float_array(curve, "curve").astype(float)
    if kind not in ("deletion", "insertion"):
        raise ValueError(f"kind must be 'deletion' or 'insertion', got {kind!r}")
    if c.ndim != 1 or len(c) < 2:
        raise ValueError(f"a curve needs at least 2 points, got shape {c.shape}")
    validation.check_finite(c, "curve")
    full, empty = (c[0], c[-1]) if kind == "deletion" else (c[-1], c[0])
    if abs(full - empty) < 1e-6:
        raise ValueError("the full and the empty peptide give the same logit: the curve cannot be normalised; skip this peptide")
    return curve_area((c - empty) / (full - empty))


# ----------------------------------------------------------------------------- interactions


def group_shapley(game, groups) -> np.ndarray:
    """Exact Shapley values `[G]` of a coalition game (`perturbation.Game`, players = the n
    residues) whose players are merged into `groups [G, n]` (bool, each residue in exactly one
    group): the 2^G coalitions of groups are evaluated in one batched call."""
    groups = np.asarray(groups, dtype=bool)
    if groups.ndim != 2 or groups.shape[1] != game.n or (groups.sum(axis=0) != 1).any():
        raise ValueError(f"groups must be [G, {game.n}] bool with every residue in exactly one group")
    g = len(groups)
    if g > 12:
        raise ValueError(f"{g} groups need 2^{g} coalitions; use at most 12")
    coalitions = shapley.all_coalitions(g)  # [2^G, G]
    v = np.asarray(game(coalitions.astype(int) @ groups.astype(int) > 0), dtype=float)
    return shapley.shapley_from_values(v, g)


def credit_imbalance(scores, mask_a, mask_b) -> float:
    """How unevenly `scores [n]` split the credit between two groups of residues:
    `(S_a - S_b) / (|S_a| + |S_b|)` with S the summed scores of a group; 0 is an even split,
    +1 or -1 all credit to one side (or credit of opposite signs)."""
    s = np.asarray(scores, dtype=float)
    a, b = np.asarray(mask_a, dtype=bool), np.asarray(mask_b, dtype=bool)
    if s.ndim != 1 or a.shape != s.shape or b.shape != s.shape:
        raise ValueError(f"scores {s.shape}, mask_a {a.shape} and mask_b {b.shape} must be [n] of equal length")
    validation.check_finite(s, "scores")
    sa, sb = s[a].sum(), s[b].sum()
    if abs(sa) + abs(sb) == 0:
        raise ValueError("neither group has any credit: the split is undefined")
    return float((sa - sb) / (abs(sa) + abs(sb)))


# ----------------------------------------------------------------------------- ROAD: imputed removal


def _imputed_rows(rows, masks, noise: float, bg) -> np.ndarray:
    """`[C, n, 20]`: `road_probabilities` for every coalition of `masks [C, n]` at once, from the
    residues' one-hot rows `rows [n, 20]`. The chain's Laplace equation has a closed form: a
    removed run between two present residues is the straight line between their rows, a run
    at either end copies its one present neighbour, and with nothing present the rows are
    `bg`. (`tests/test_evaluation.py` checks it against the linear system.)"""
    masks = np.asarray(masks, dtype=bool)
    c, n = masks.shape
    idx = np.arange(n)
    left = np.maximum.accumulate(np.where(masks, idx, -1), axis=1)  # nearest present residue at or before i
    right = np.minimum.accumulate(np.where(masks, idx, n)[:, ::-1], axis=1)[:, ::-1]  # at or after i
    has_l, has_r = left >= 0, right < n
    span = np.where(has_l & has_r & (right > left), right - left, 1)
    t = np.where(has_l & has_r, (idx - left) / span, np.where(has_l, 0.0, 1.0))  # weight of the right neighbour
    out = ((1 - t)[..., None] * rows[np.clip(left, 0, n - 1)] + t[..., None] * rows[np.clip(right, 0, n - 1)])
    out[~(has_l | has_r)] = bg
    gone = ~masks
    out[gone] = (1 - noise) * out[gone] + noise * bg
    return out


def _road_setup(x, noise, background):
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or x.shape[-1] != 21:
        raise ValueError(f"x must be one peptide [L, 21], got shape {x.shape}")
    n = int(x[:, 1:].sum(axis=1).astype(bool).sum())
    noise = validation.check_number(noise, "noise")
    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"noise must lie in [0, 1], got {noise}")
    bg = np.full(20, 1 / 20) if background is None else np.asarray(background, dtype=float)
    if bg.shape != (20,) or (bg < 0).any() or abs(bg.sum() - 1) > 1e-6:
        raise ValueError("background must be 20 residue probabilities summing to 1")
    return x, n, noise, bg


def road_probabilities(x, keep, *, noise: float = 0.1, background=None) -> np.ndarray:
    """Noisy linear imputation for the residues of peptide `x [L, A]`, after Rong et al.'s
    ROAD: `[n, 20]` residue probabilities. A present residue (`keep [n]` True) keeps its own
    one-hot row; the removed ones solve the chain's Laplace equation (each removed row is
    the mean of its one or two neighbours' rows, removed or not), so they interpolate the
    present residues around them; then every removed row is mixed with `background [20]`
    (default uniform) with weight `noise`. With nothing present, the rows are `background`."""
    x, n, noise, bg = _road_setup(x, noise, background)
    keep = np.asarray(keep, dtype=bool)
    if keep.shape != (n,):
        raise ValueError(f"keep must be [n] = [{n}] bool (one per residue), got shape {keep.shape}")
    return _imputed_rows(x[:n, 1:], keep[None], noise, bg)[0]


def road_inputs(x, masks, key, *, samples: int = 4, noise: float = 0.1, background=None) -> np.ndarray:
    """`[C, samples, L, A]` one-hot inputs: for each coalition `masks [C, n]`, `samples`
    peptides whose removed residues are drawn from `road_probabilities` (a real residue in
    every position: no holes, the same length)."""
    validation.check_int(samples, "samples", minimum=1)
    validation.check_key(key)
    x32 = np.asarray(x, dtype=np.float32)
    x, n, noise, bg = _road_setup(x, noise, background)
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 2 or masks.shape[1] != n:
        raise ValueError(f"masks must be [C, n] = [C, {n}] bool (one column per residue), got shape {masks.shape}")
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())
    probs = _imputed_rows(x[:n, 1:], masks, noise, bg)  # [C, n, 20]
    cum = np.cumsum(probs / probs.sum(axis=-1, keepdims=True), axis=-1)  # [C, n, 20]
    out = np.repeat(np.repeat(x32[None, None], len(masks), 0), samples, 1)
    # every removed residue of every sample of every coalition, in the order (coalition,
    # sample, residue): one uniform number each, drawn in that order
    c_i, s_i, g_i = np.nonzero(np.broadcast_to(~masks[:, None, :], (len(masks), samples, n)))
    u = rng.random(len(c_i))
    drawn = np.minimum((u[:, None] > cum[c_i, g_i]).sum(-1), 19)  # residue index 0..19
    out[c_i, s_i, g_i] = 0.0
    out[c_i, s_i, g_i, 1 + drawn] = 1.0
    return out


def road_curve(f: PredictFn, x, order, key, *, kind: str = "deletion", samples: int = 4, noise: float = 0.1,
               background=None, length: int | None = None) -> np.ndarray:
    """`faithfulness_curve` with ROAD's noisy linear imputation instead of a fill: the mean
    logit `[n + 1]` over `samples` imputations per point. `length`: cut inputs to that many
    positions (all cut positions must be padding). One batched model call."""
    x = np.asarray(x, dtype=np.float32)
    if length is not None:
        if length > x.shape[0] or x[length:, 1:].any():
            raise ValueError(f"length={length} would cut residues of a peptide of {x.shape[0]} positions")
        x = x[:length]
    n = int(x[:, 1:].sum(axis=1).astype(bool).sum())
    masks = curve_masks(_check_order(order, n), kind)
    batch = road_inputs(x, masks, key, samples=samples, noise=noise, background=background).reshape(-1, *x.shape)
    # pad the batch to (positions + 1) x samples rows: every peptide length shares one compiled shape
    rows = (x.shape[0] + 1) * samples
    batch = np.concatenate([batch, np.repeat(x[None], rows - len(batch), 0)])
    logits = validation.model_outputs(f, jnp.asarray(batch))[: len(masks) * samples]
    return logits.reshape(len(masks), samples).mean(axis=1)


# ----------------------------------------------------------------------------- sanity checks


def randomise_layers(params: hk.Params, fresh: hk.Params, layers: Sequence[str]) -> hk.Params:
    """`params` with the modules named in `layers` replaced by those of `fresh` (the same
    model initialised from another key: the initial distribution, as Adebayo et al.)."""
    missing = [m for m in layers if m not in params or m not in fresh]
    if missing:
        raise ValueError(f"no module {missing[0]!r} in the parameters; modules: {sorted(params)}")
    return {m: (fresh[m] if m in layers else v) for m, v in params.items()}


def cascade(params: hk.Params, fresh: hk.Params, layers: Sequence[str] = CNN_LAYERS_TOP_DOWN) -> list[tuple[str, hk.Params]]:
    """Cascading randomisation: `[(name, params)]` with the first 1, 2, ... of `layers`
    (top down) re-initialised, each stage keeping the earlier stages' randomisation."""
    return [(layers[k - 1], randomise_layers(params, fresh, layers[:k])) for k in range(1, len(layers) + 1)]


# ----------------------------------------------------------------------------- the methods


class Method(NamedTuple):
    explain: Callable  # (x [L, A], key) -> scores [n] (higher = more evidence for the class)
    forward: Callable[[int], int]  # forward passes for a peptide of n residues
    backward: Callable[[int], int]  # gradient (forward + backward) passes
    signed: bool  # False: a magnitude (saliency), which cannot say "against"


def explainers(
    f: PredictFn,
    *,
    make_f: Callable[[Callable], PredictFn] | None = None,
    ig_steps: int = 64,
    smooth_samples: int = 50,
    smooth_sigma: float = 0.15,
    permutations: int = 64,
    kernel_samples: int = 512,
    lime_samples: int = 1000,
    length: int | None = None,
) -> dict[str, Method]:
    """Every per-residue method of the course for predict function `f`, with the settings
    of its chapter. `make_f(activation) -> f` (the course CNN: `lambda act:
    cnn.predict_fn(params, activation=act)`) adds DeepLIFT. Perturbation methods mask
    residues in place (padding fill); `length`: evaluate them on inputs cut to that many
    positions (as `perturbation.make_game`; one length for all peptides compiles once).
    IG and SmoothGrad batch their gradients `min(ig_steps + 1, smooth_samples)`
    at a time (one compiled shape for both). A "random" method (a random order) is the control every method must beat."""
    validation.check_callable(f, "f")
    validation.check_int(ig_steps, "ig_steps", minimum=1)
    validation.check_int(smooth_samples, "smooth_samples", minimum=1)
    validation.check_number(smooth_sigma, "smooth_sigma", nonnegative=True)
    validation.check_int(permutations, "permutations", minimum=4)
    validation.check_int(kernel_samples, "kernel_samples", minimum=2)
    validation.check_int(lime_samples, "lime_samples", minimum=2)

    # IG and SmoothGrad take their gradients in chunks of one size, so that the two share one
    # compiled program (a new batch shape costs a compilation of the model's gradient)
    grad_batch = min(ig_steps + 1, smooth_samples)

    def own(a, x):
        return np.asarray(attribution.per_residue(a, x))

    def saliency(x, key):
        g = np.asarray(attribution.saliency(f, x))
        return np.linalg.norm(g, axis=-1)[: attribution.num_residues(x)]

    methods = {
        "saliency": Method(saliency, lambda n: 0, lambda n: 1, False),
        "gradient × input": Method(lambda x, key: own(attribution.gradient_x_input(f, x), x), lambda n: 0, lambda n: 1, True),
        "integrated gradients": Method(
            lambda x, key: own(attribution.integrated_gradients(f, x, steps=ig_steps, batch_size=grad_batch).attributions, x),
            lambda n: 2, lambda n: ig_steps + 1, True),
        "SmoothGrad": Method(
            lambda x, key: own(attribution.smoothgrad(f, x, key, n=smooth_samples, sigma=smooth_sigma,
                                                      batch_size=grad_batch), x),
            lambda n: 0, lambda n: smooth_samples, True),
    }
    if make_f is not None:
        dl = attribution.make_deeplift(make_f)
        methods["DeepLIFT"] = Method(lambda x, key: own(dl(x).attributions, x), lambda n: 0, lambda n: 2, True)
    methods.update({
        "occlusion": Method(lambda x, key: perturbation.occlusion(f, x, length=length), lambda n: n + 2, lambda n: 0, True),
        "Shapley (permutation)": Method(
            lambda x, key: shapley.shapley_permutation(f, x, key, n_permutations=permutations, baseline="padding",
                                                       length=length).values,
            lambda n: permutations * (n - 1) + 2, lambda n: 0, True),
        "KernelSHAP": Method(
            lambda x, key: shapley.kernel_shap(f, x, key, n_samples=kernel_samples, baseline="padding",
                                               length=length).values,
            lambda n: min(kernel_samples, 2**n - 2) + 2, lambda n: 0, True),
        "LIME": Method(
            lambda x, key: surrogate.lime(f, x, key, n_samples=lime_samples, length=length).coefficients,
            lambda n: lime_samples + 2, lambda n: 0, True),
        "random": Method(
            lambda x, key: np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel()).random(attribution.num_residues(x)),
            lambda n: 0, lambda n: 0, False),
    })
    return methods


# ----------------------------------------------------------------------------- the shipped sanity study

SANITY_FILE = "motif_sanity.json"
SANITY_DRAWS = (123, 1, 2, 3)  # PRNG seeds of the fresh initialisations (123: the chapter's draw)
SANITY_STAGES = {"output layer": "hemolysis_cnn/logit", "all dense layers": "hemolysis_cnn/dense0",
                 "all layers": "hemolysis_cnn/~features/conv0"}


def sanity_peptides(n: int = 20) -> np.ndarray:
    """Indices into the planted-motif test split of the first `n` correctly classified
    positives of 18 or more residues (chapter 13's peptides)."""
    from helpers import model as model_lib
    from helpers import synthetic

    split = synthetic.motif_splits()["test"].split
    params, _ = model_lib.load_pretrained(synthetic.MOTIF_MODEL)
    logits = np.asarray(model_lib.predict_fn(params)(split.x))
    lengths = np.array([len(s) for s in split.sequences])
    return np.flatnonzero((split.y == 1) & (logits > 0) & (lengths >= 18))[:n]


def hydropathy_scores(x, key=None) -> np.ndarray:
    """A negative control: each residue's Kyte-Doolittle hydropathy `[n]`, whatever the model."""
    from helpers import sequences as seqs

    kd = np.array([0.0] + [seqs.KYTE_DOOLITTLE[a] for a in seqs.AMINO_ACIDS])
    return kd[np.asarray(x).argmax(-1)][: attribution.num_residues(x)]


def sanity_study(*, draws: Sequence[int] = SANITY_DRAWS, n_peptides: int = 20, methods: Sequence[str] | None = None,
                 trained: Sequence[str] = ("shuffled", "reference"), seed: int = 0) -> dict:
    """Cascading randomisation of the planted-motif CNN for each fresh-initialisation seed in
    `draws` (the stages of `SANITY_STAGES`), and the `trained` models: "shuffled" (the
    shuffled-label model) and "reference" (its true-label twin, `synthetic.REFERENCE_MODEL`).
    For every variant and method: the Spearman correlations `[peptides]` of the signed and of
    the absolute scores with the original model's (with both trained models, also the
    shuffled model's with the reference's), and each variant's test AUROC. JSON-ready dict."""
    from scipy.stats import spearmanr

    from helpers import metrics, synthetic
    from helpers import model as model_lib

    split = synthetic.motif_splits()["test"].split
    idx = sanity_peptides(n_peptides)
    xs = split.x[idx]
    base, _ = model_lib.load_pretrained(synthetic.MOTIF_MODEL)
    variants = {"original": base}
    for s in draws:
        fresh = model_lib.make_model().init(jax.random.PRNGKey(s), xs[:1])
        stages = dict(cascade(base, fresh))
        variants.update({f"{stage} (draw {s})": stages[module] for stage, module in SANITY_STAGES.items()})
    if set(trained) - {"shuffled", "reference"}:
        raise ValueError(f"trained must name some of 'shuffled', 'reference'; got {trained!r}")
    if "shuffled" in trained:
        variants["shuffled labels"] = model_lib.load_pretrained(synthetic.SHUFFLED_MODEL)[0]
    if "reference" in trained:
        variants["reference"] = model_lib.load_pretrained(synthetic.REFERENCE_MODEL)[0]
    key = jax.random.PRNGKey(seed)
    scores, auroc = {}, {}
    for name, p in variants.items():
        f = model_lib.predict_fn(p)
        m = explainers(f, make_f=lambda act, p=p: model_lib.predict_fn(p, activation=act), length=32)
        m = {k: v for k, v in m.items() if k != "random" and (methods is None or k in methods)}
        scores[name] = {k: [np.asarray(v.explain(jax.numpy.asarray(x), jax.random.fold_in(key, j)), float)
                            for j, x in enumerate(xs)] for k, v in m.items()}
        scores[name]["hydropathy"] = [hydropathy_scores(x) for x in xs]
        auroc[name] = metrics.auroc(split.y, np.asarray(f(split.x)))

    def rho(a_list, b_list, absolute):
        t = np.abs if absolute else (lambda v: v)
        return [float(spearmanr(t(a), t(b))[0]) for a, b in zip(a_list, b_list, strict=True)]

    out = {"peptides": idx.tolist(), "draws": list(draws), "seed": seed, "auroc": auroc, "signed": {}, "absolute": {}}
    pairs = [(name, "original") for name in variants if name != "original"]
    if {"shuffled labels", "reference"} <= set(variants):
        pairs.append(("shuffled labels", "reference"))
    for name, ref in pairs:
        label = name if ref == "original" else f"{name} vs {ref}"
        for kind, absolute in (("signed", False), ("absolute", True)):
            out[kind][label] = {k: rho(scores[ref][k], scores[name][k], absolute) for k in scores[name]}
    return out


# ----------------------------------------------------------------------------- the shipped explanations

EXPLAIN_FILE = "explain_study.json.gz"
EXPLAIN_FILLS = ("padding", "delete", "ROAD")


def _explain_all(methods, xs, key):
    """Scores `{method: [n] per peptide}` of `xs [P, L, A]` (key `fold_in(key, j)` for peptide j)
    and each method's seconds for all peptides, after one call outside the timing (compilation)."""
    scores, seconds = {}, {}
    for name, m in methods.items():
        m.explain(jnp.asarray(xs[0]), key)
        t0 = time.perf_counter()
        raw = [m.explain(jnp.asarray(x), jax.random.fold_in(key, j)) for j, x in enumerate(xs)]
        seconds[name] = time.perf_counter() - t0
        scores[name] = [np.asarray(r, float).tolist() for r in raw]
    return scores, seconds


def explain_peptides(n_control: int = 40, n_and: int = 16, n_faith: int = 40) -> dict:
    """Chapter 13's peptides: `control` (planted-motif test split, `sanity_peptides`), `and`
    (AND test split: correctly classified positives with both halves planted) and `faith`
    (hemolysis test peptides of 18 to 30 residues whose logit exceeds the all-padding one's by
    more than 0.5), each the first so many indices."""
    from helpers import data, synthetic
    from helpers import model as model_lib

    pair = synthetic.pair_splits()["test"]
    and_logits = np.asarray(model_lib.predict_fn(model_lib.load_pretrained(synthetic.AND_MODEL)[0])(pair.split.x))
    hemo = model_lib.predict_fn(model_lib.load_pretrained()[0])
    test = data.load_split("test")
    short = [i for i, s in enumerate(test.sequences) if 18 <= len(s) <= 30]
    empty = float(hemo(perturbation.fill_reference("padding", test.x[0])[None])[0])
    return {"control": sanity_peptides(n_control).tolist(),
            "and": np.flatnonzero((pair.split.y == 1) & pair.planted.all(axis=1) & (and_logits > 0))[:n_and].tolist(),
            "faith": [i for i, lf in zip(short, np.asarray(hemo(test.x[short]))) if lf - empty > 0.5][:n_faith]}


def explain_study(*, n_control: int = 40, n_and: int = 16, n_faith: int = 40, methods: Sequence[str] | None = None,
                  seed: int = 0) -> dict:
    """Chapter 13's explanations (`explainers(..., length=32)`, key `PRNGKey(seed)` folded with
    the peptide's position j): every method on the `explain_peptides` of the planted-motif,
    AND (no "random") and hemolysis CNNs, with each method's seconds; for the hemolysis
    peptides also integrated gradients from the padding reference, the normalised deletion and
    insertion areas (padding fill) and the deletion areas under each of `EXPLAIN_FILLS` (ROAD:
    4 imputations, noise 0.1, key `fold_in(key, 1000 + j)`). JSON-ready dict."""
    from helpers import data, synthetic
    from helpers import model as model_lib

    key = jax.random.PRNGKey(seed)
    idx = explain_peptides(n_control, n_and, n_faith)
    out = {"seed": seed, "peptides": idx, "scores": {}, "seconds": {}}
    test = data.load_split("test")
    xs = {"control": synthetic.motif_splits()["test"].split.x, "and": synthetic.pair_splits()["test"].split.x, "faith": test.x}
    models = {"control": synthetic.MOTIF_MODEL, "and": synthetic.AND_MODEL, "faith": model_lib.PRETRAINED_NAME}
    for part, name in models.items():
        p = model_lib.load_pretrained(name)[0]
        m = explainers(model_lib.predict_fn(p), make_f=lambda act, p=p: model_lib.predict_fn(p, activation=act), length=32)
        m = {k: v for k, v in m.items() if (methods is None or k in methods) and not (part == "and" and k == "random")}
        out["scores"][part], out["seconds"][part] = _explain_all(m, xs[part][idx[part]], key)
    hemo = model_lib.predict_fn(model_lib.load_pretrained()[0])
    faith, x_f = out["scores"]["faith"], test.x[idx["faith"]]
    if "integrated gradients" in faith:
        ref = perturbation.fill_reference("padding", test.x[0])
        faith["IG (padding baseline)"] = [np.asarray(attribution.per_residue(attribution.integrated_gradients(
            hemo, jnp.asarray(x), ref, steps=64, batch_size=50).attributions, jnp.asarray(x)), float).tolist() for x in x_f]
    out["areas"] = {kind: {m: [normalised_area(faithfulness_curve(hemo, x, ranking(s), kind=kind, length=32), kind)
                               for s, x in zip(sc, x_f)] for m, sc in faith.items() if m != "IG (padding baseline)"}
                    for kind in ("deletion", "insertion")}

    def curve(fill, s, x, j):
        if fill == "ROAD":
            return road_curve(hemo, x, ranking(s), jax.random.fold_in(key, 1000 + j), samples=4, noise=0.1, length=32)
        return faithfulness_curve(hemo, x, ranking(s), fill=fill, length=32)

    out["fill_areas"] = {fill: {m: [normalised_area(curve(fill, s, x, j), "deletion") for j, (s, x) in enumerate(zip(sc, x_f))]
                                for m, sc in faith.items()} for fill in EXPLAIN_FILLS}
    return out


def load_explain_study(path=None) -> dict:
    """The shipped `explain_study` (`helpers/pretrained/explain_study.json.gz`), scores as arrays."""
    import gzip
    import json

    from helpers import model as model_lib

    path = model_lib.pretrained_dir() / EXPLAIN_FILE if path is None else path
    out = json.loads(gzip.decompress(Path(path).read_bytes()))
    out["scores"] = {part: {m: [np.asarray(s) for s in sc] for m, sc in d.items()} for part, d in out["scores"].items()}
    return out


def main(argv=None) -> None:
    import argparse
    import json
    import os
    import sys

    from helpers import model as model_lib

    p = argparse.ArgumentParser(description="Chapter 13's randomisation study of the planted-motif CNN.")
    p.add_argument("--out", type=Path, default=None,
                   help=f"default helpers/pretrained/{SANITY_FILE} ({EXPLAIN_FILE} with --part explain)")
    p.add_argument("--small", action="store_true", help="one draw, 2 peptides, 2 methods: a smoke test")
    p.add_argument("--part", choices=("all", "cascade", "shuffled", "reference", "explain"), default="all",
                   help="cascade: the randomised draws only; shuffled, reference: that trained model only "
                        "(a part is merged into an existing --out file); explain: the chapter's explanations "
                        f"and faithfulness areas (`explain_study`, default --out {EXPLAIN_FILE})")
    p.add_argument("--draws", type=int, nargs="+", default=None, help=f"fresh-initialisation seeds (default {SANITY_DRAWS})")
    p.add_argument("--peptides", type=int, default=None, help="how many test peptides (default 20)")
    a = p.parse_args(argv)
    command = "python -m helpers.evaluation " + " ".join(argv if argv is not None else sys.argv[1:])
    a.out = a.out or model_lib.pretrained_dir() / (EXPLAIN_FILE if a.part == "explain" else SANITY_FILE)
    if a.part == "explain":
        import gzip

        n = (2, 2, 2) if a.small else (40, 16, 40)
        methods = ("gradient × input", "integrated gradients", "occlusion", "random") if a.small else None
        load = os.getloadavg()[0]
        out = explain_study(n_control=n[0], n_and=n[1], n_faith=n[2], methods=methods)
        out.update(command=command, settings={
            "peptides (control, and, faith)": list(n), "methods": methods, "explainers": "defaults, length=32",
            "ROAD": "samples=4, noise=0.1", "timing": {"cpus": os.cpu_count(), "load average before/after":
                                                       [round(load, 2), round(os.getloadavg()[0], 2)]}})
        a.out.write_bytes(gzip.compress((json.dumps(out) + "\n").encode(), mtime=0))
        print(a.out)
        return
    kw = dict(draws=(123,), n_peptides=2, methods=("gradient × input", "occlusion"), trained=("shuffled",)) if a.small else {}
    if a.draws is not None:
        kw["draws"] = tuple(a.draws)
    if a.peptides is not None:
        kw["n_peptides"] = a.peptides
    if a.part == "cascade":
        kw["trained"] = ()
    if a.part in ("shuffled", "reference"):
        kw["draws"], kw["trained"] = (), (a.part,) if a.part == "shuffled" else ("shuffled", "reference")
    out = sanity_study(**kw)
    if a.part != "all" and a.out.exists():
        old = json.loads(a.out.read_text())
        if old["peptides"] != out["peptides"] or old["seed"] != out["seed"]:
            raise ValueError(f"{a.out} was made for other peptides or another seed; write a new file")
        for k in ("auroc", "signed", "absolute"):
            out[k] = {**old[k], **out[k]}
        out["draws"] = sorted(set(old["draws"]) | set(out["draws"]), key=[*SANITY_DRAWS, *old["draws"], *out["draws"]].index)
        commands = old["command"] if isinstance(old["command"], list) else [old["command"]]
        out["command"] = [*commands, command]
    else:
        out["command"] = command
    a.out.write_text(json.dumps(out, indent=0) + "\n")
    print(a.out)


if __name__ == "__main__":
    main()
