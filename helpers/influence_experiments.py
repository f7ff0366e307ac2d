"""Chapter 9's experiments on the CNN's dense head, and the model of its convex section.

Split out of `helpers.influence` (the methods); `python -m helpers.influence [--flag]` runs
`main` here and writes the shipped files:

    python -m helpers.influence              # influence_head.npz: the head at its minimum
    python -m helpers.influence --weak       # influence_weak.npz: weight decay 1e-3
    python -m helpers.influence --mislabel   # influence_mislabel.npz: 10 % labels flipped
    python -m helpers.influence --damping    # influence_damping.npz: proximal retrainings
    python -m helpers.influence --loo        # influence_loo.npz: leave-one-out retrainings

Shape glossary: N training peptides, T test peptides, S seeds, R removals, D dampings,
53 head features, P = 30 016 head parameters.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from helpers import validation
from helpers.influence import (
    FitResult,
    conjugate_gradient,
    directional_derivatives,
    fit,
    flatten,
    make_hvp,
    per_example_grads,
    removal_weights,
    self_influence,
    tracin_self,
)
from helpers.spectrum import lanczos

Params = Any


# ----------------------------------------------------------------------------- a convex model


def composition_features(x) -> jax.Array:
    """`[B, 20]` amino-acid fractions of one-hot peptides `x [B, L, A]` (padding ignored)."""
    x = jnp.asarray(x)
    if x.ndim != 3 or x.shape[-1] != 21:
        raise ValueError(f"expected one-hot peptides [B, L, 21], got {x.shape}")
    counts = x[..., 1:].sum(axis=1)
    n = counts.sum(axis=-1, keepdims=True)
    if bool((n == 0).any()):
        raise ValueError("an input holds no residue (all padding or all zero): not a peptide")
    validation.check_finite(counts, "x")
    return counts / n


def logistic_loss(params: dict, x: jax.Array, y: jax.Array) -> jax.Array:
    """Per-example loss `[B]` of logistic regression `logit = x @ w + b` on features `x [B, D]`
    (params `{"w": [D], "b": []}`), binary cross-entropy with labels in {0, 1}."""
    logits = x @ params["w"] + params["b"]
    return optax.sigmoid_binary_cross_entropy(logits, y.astype(logits.dtype))


# ----------------------------------------------------------------------------- the CNN's dense head

# Chapter 9 studies the CNN with its convolutional feature layers frozen: the dense head,
# 53 -> 256 -> 64 -> 1, trained to a minimum of R on the 53 head features of the shipped
# CNN. Training it (about 1400 full-batch L-BFGS steps) is precomputed by
#
#     python -m helpers.influence        # writes helpers/pretrained/influence_head.npz
#
# and `load_head_study` reads the file; `--small` runs a few steps only (a smoke test).

HEAD_FILE = "influence_head.npz"
HEAD_SETTINGS: dict[str, float] = {
    "weight_decay": 1e-2,  # lambda of R
    "sgd_lr": 0.5,  # plain SGD on mini-batch means of R
    "sgd_epochs": 30,
    "every": 3,  # a checkpoint every 3 epochs (TracIn's)
    "batch_size": 64,
    "tol": 1e-6,  # L-BFGS until |grad R| < tol
    "maxiter": 3000,
}
# How far the test logits at the end of the SGD phase may move when it is rerun elsewhere.
# Measured: identical with 1 and 2 threads; at most 1e-6 when the initial weights are
# jittered by 1e-7 (relative, 6 draws), i.e. the phase damps rounding differences. The
# tolerance is 1000 x that, still 1e-4 of the largest logit (5.9).
SGD_LOGIT_TOL = 1e-3


@functools.cache
def _head_model():
    from helpers import model as model_lib

    return model_lib.make_head()


def head_loss(params: Params, f: jax.Array, y: jax.Array) -> jax.Array:
    """Per-example loss `[B]` of the CNN's dense head on features `f [B, 53]`: binary
    cross-entropy of its logits (the interface every function of this module takes)."""
    return optax.sigmoid_binary_cross_entropy(_head_model().apply(params, f), y)


class HeadProblem(NamedTuple):
    feat_train: jax.Array  # [N, 53] head features of the training peptides
    y_train: jax.Array  # [N] float32 labels
    feat_test: jax.Array  # [T, 53]
    y_test: jax.Array  # [T]


def head_problem(cnn_params: Params | None = None) -> HeadProblem:
    """The head's data: the 53 features of every training and test peptide under the
    shipped CNN (or `cnn_params`), computed once in batches of 1024."""
    from helpers import data as data_lib
    from helpers import model as model_lib

    if cnn_params is None:
        cnn_params, _ = model_lib.load_pretrained()
    features = jax.jit(model_lib.make_features().apply)
    out = []
    for split in ("train", "test"):
        s = data_lib.load_split(split)
        f = jnp.concatenate([features(cnn_params, s.x[i : i + 1024]) for i in range(0, len(s.y), 1024)])
        out += [f, jnp.asarray(s.y, jnp.float32)]
    return HeadProblem(*out)


class HeadRun(NamedTuple):
    fit: FitResult | None  # the L-BFGS minimum (None with polish=False)
    checkpoints: list  # parameters after every `every` SGD epochs
    sgd_params: Params  # where SGD ended and L-BFGS started


def train_head(
    feat_train, y_train, *, seed: int, weight_decay: float = HEAD_SETTINGS["weight_decay"],
    sgd_lr: float = HEAD_SETTINGS["sgd_lr"], sgd_epochs: int = HEAD_SETTINGS["sgd_epochs"],
    every: int = HEAD_SETTINGS["every"], batch_size: int = HEAD_SETTINGS["batch_size"],
    tol: float = HEAD_SETTINGS["tol"], maxiter: int = HEAD_SETTINGS["maxiter"], polish: bool = True,
) -> HeadRun:
    """SGD from a fresh init (checkpoints every `every` epochs), then L-BFGS to the minimum."""
    from helpers import training

    head, n = _head_model(), len(y_train)
    if not 1 <= batch_size <= n or sgd_epochs < 1 or every < 1:
        raise ValueError(f"need 1 <= batch_size <= N = {n}, sgd_epochs >= 1, every >= 1; "
                         f"got {batch_size}, {sgd_epochs}, {every}")
    p = head.init(jax.random.PRNGKey(seed), feat_train[:1])
    opt = optax.chain(optax.add_decayed_weights(weight_decay), optax.sgd(sgd_lr))  # SGD on R
    epoch = training.make_epoch(training.make_update(head, opt))
    state = training.TrainState(p, opt.init(p), jnp.zeros([], jnp.int32))
    rng, checkpoints = np.random.default_rng(seed), []
    for ep in range(1, sgd_epochs + 1):
        batches = rng.permutation(n)[: n // batch_size * batch_size].reshape(-1, batch_size)
        state, _ = epoch(state, feat_train, y_train, jnp.asarray(batches))
        if ep % every == 0:
            checkpoints.append(state.params)
    if not polish:
        return HeadRun(None, checkpoints, state.params)
    final = fit(head_loss, state.params, feat_train, y_train, weight_decay=weight_decay, tol=tol, maxiter=maxiter)
    return HeadRun(final, checkpoints, state.params)


def head_study(*, seeds: tuple[int, ...] = (0, 1), settings: dict | None = None, command: str = "") -> dict[str, np.ndarray]:
    """What `python -m helpers.influence` ships: the head of `seeds[0]` trained to its
    minimum (`theta`, flattened, with L-BFGS `iterations` and final `grad_norm`), the test
    logits where its SGD phase ended (`sgd_test_logits`, a fingerprint for rerunning the SGD
    phase elsewhere), and for every further seed its test losses and final |grad R|
    (`other_test_losses [S-1, T]`, `other_grad_norm`); the settings as `config_*`."""
    settings = {**HEAD_SETTINGS, **(settings or {})}
    prob = head_problem()
    head = _head_model()
    runs = [train_head(prob.feat_train, prob.y_train, seed=s, **settings) for s in seeds]
    out = {
        "theta": np.asarray(flatten(runs[0].fit.params)[0]),
        "iterations": np.asarray(runs[0].fit.iterations),
        "grad_norm": np.asarray(runs[0].fit.grad_norm),
        "sgd_test_logits": np.asarray(head.apply(runs[0].sgd_params, prob.feat_test)),
        "test_losses": np.asarray(head_loss(runs[0].fit.params, prob.feat_test, prob.y_test)),
        "other_seeds": np.array(seeds[1:], int),
        "other_test_losses": np.array([np.asarray(head_loss(r.fit.params, prob.feat_test, prob.y_test)) for r in runs[1:]]),
        "other_grad_norm": np.array([float(r.fit.grad_norm) for r in runs[1:]]),
        "other_iterations": np.array([int(r.fit.iterations) for r in runs[1:]]),
        "config_seed": np.array(seeds[0]),
        "config_command": np.array(command),
        "config_jax": np.array(jax.__version__),
    }
    out.update({f"config_{k}": np.array(v) for k, v in settings.items()})
    return out


WEAK_FILE = "influence_weak.npz"


def weak_study(*, weight_decay: float = 1e-3, seeds: tuple[int, ...] = (0, 1), removals: int = 15,
               lanczos_steps: int = 60, cg_maxiter: int = 500, maxiter: int = 6000, command: str = "") -> dict[str, np.ndarray]:
    """The head at a weaker weight decay (Koh & Liang's 1e-3 by default): `train_head` for
    each seed (more L-BFGS steps allowed), the test losses of every seed
    (`test_losses [S, T]`), the seed-0 head (`theta`), Lanczos's smallest Ritz values with
    their bounds, influence on the test peptide of largest loss (`test_index`) by CG, and
    leave-one-out retraining from the seed-0 minimum for the `removals` training peptides of
    largest predicted effect (`removed`, `predicted`, `actual`, L-BFGS `loo_iterations`,
    `loo_grad_norm`)."""
    prob = head_problem()
    n = len(prob.y_train)
    runs = [train_head(prob.feat_train, prob.y_train, seed=s, weight_decay=weight_decay, maxiter=maxiter) for s in seeds]
    params = runs[0].fit.params
    losses = np.array([np.asarray(head_loss(r.fit.params, prob.feat_test, prob.y_test)) for r in runs])
    hvp = make_hvp(head_loss, params, prob.feat_train, prob.y_train, weight_decay=weight_decay)
    lz = lanczos(hvp, flatten(params)[0].size, jax.random.PRNGKey(2), steps=lanczos_steps)
    ti = int(np.argmax(losses[0]))
    test = (prob.feat_test[ti : ti + 1], prob.y_test[ti : ti + 1])
    g = per_example_grads(head_loss, params, *test)
    sol = conjugate_gradient(hvp, g, maxiter=cg_maxiter)
    predicted = np.asarray(directional_derivatives(head_loss, params, prob.feat_train, prob.y_train, sol.x))[0] / n
    removed = np.argsort(-np.abs(predicted))[:removals]
    actual, its, gns = [], [], []
    for j in removed:
        loo = fit(head_loss, params, prob.feat_train, prob.y_train, weight_decay=weight_decay,
                  weights=removal_weights(n, [j])[0].astype(np.float32), tol=HEAD_SETTINGS["tol"], maxiter=maxiter)
        actual.append(float(head_loss(loo.params, *test)[0]) - losses[0, ti])
        its.append(int(loo.iterations))
        gns.append(float(loo.grad_norm))
    return {
        "theta": np.asarray(flatten(params)[0]), "seeds": np.array(seeds), "test_losses": losses,
        "iterations": np.array([int(r.fit.iterations) for r in runs]),
        "grad_norm": np.array([float(r.fit.grad_norm) for r in runs]),
        "ritz_values": lz.ritz_values[:5], "ritz_bounds": lz.error_bounds[:5], "ritz_top": np.array(lz.ritz_values[-1]),
        "test_index": np.array(ti), "cg_iterations": np.asarray(sol.iterations)[0], "cg_residual": np.asarray(sol.residual)[0],
        "cg_negative_curvature": np.asarray(sol.negative_curvature)[0],
        "removed": removed, "predicted": predicted[removed], "actual": np.array(actual),
        "loo_iterations": np.array(its), "loo_grad_norm": np.array(gns),
        "config_weight_decay": np.array(weight_decay), "config_maxiter": np.array(maxiter),
        "config_command": np.array(command), "config_jax": np.array(jax.__version__),
    }


class HeadStudy(NamedTuple):
    params: Params  # the trained head (seed 0)
    data: dict[str, np.ndarray]  # every array of the file


def load_head_study(path=None, *, name: str = HEAD_FILE) -> HeadStudy:
    """The shipped `influence_head.npz` (`name=WEAK_FILE`: the weak-weight-decay study), or
    the file at `path`, with the head's parameters unflattened into haiku's layout."""
    from helpers import model as model_lib

    path = path or model_lib.pretrained_dir() / name
    with np.load(path) as f:
        d = {k: f[k] for k in f.files}
    template = _head_model().init(jax.random.PRNGKey(0), jnp.zeros((1, 53), jnp.float32))
    _, unravel = flatten(template)
    return HeadStudy(unravel(jnp.asarray(d["theta"])), d)


# ----------------------------------------------------------------------------- leave-one-out on the head

LOO_FILE = "influence_loo.npz"
# How far one leave-one-out retraining's effect on the test loss may move when it is rerun
# elsewhere, relative to the effect. Measured: `--loo --small` under `taskset -c 0` (1 thread
# instead of 2, another summation order) moved the two largest effects by 0 and 2.1e-5 of
# their size (the predictions by 3.7e-6). The tolerance is 1000 x that.
LOO_ACTUAL_RTOL = 0.02


def chapter_picks(params: Params, prob: HeadProblem) -> dict[str, int]:
    """Chapter 9's three test peptides under the head `params`: the surest hemolytic, the
    surest non-hemolytic, and the worst error (largest test loss); test indices."""
    logits = np.asarray(_head_model().apply(params, prob.feat_test))
    losses = np.asarray(head_loss(params, prob.feat_test, prob.y_test))
    y = np.asarray(prob.y_test)
    return {"surest hemolytic": int(np.argmax(np.where(y == 1, logits, -np.inf))),
            "surest non-hemolytic": int(np.argmin(np.where(y == 0, logits, np.inf))),
            "worst error": int(np.argmax(losses))}


def loo_study(*, largest: int = 15, random: int = 8, jobs: tuple[str, ...] = ("surest hemolytic", "worst error"),
              seed: int = 0, maxiter: int = 1000, command: str = "") -> dict[str, np.ndarray]:
    """Chapter 9's leave-one-out check of the shipped head: influence (CG) on the three test
    peptides of `chapter_picks`, then for each test peptide named in `jobs` the `largest`
    training peptides of largest predicted |effect| and `random` others drawn with
    `np.random.default_rng(seed)` (in that order, one generator for all jobs), each removed
    and the head retrained from its minimum by L-BFGS to |grad R| < 1e-6. One row per
    retraining `[R]`: `job`, `chosen` ("largest" / "random"), `test_index`, `removed`,
    `predicted` and `actual` change of the test loss, L-BFGS `iterations`, `grad_norm`."""
    from helpers.influence import influence

    st = load_head_study()
    p = st.params
    prob = head_problem()
    wd = HEAD_SETTINGS["weight_decay"]
    n = len(prob.y_train)
    picks = chapter_picks(p, prob)
    t_idx = np.array(list(picks.values()))
    res = influence(head_loss, p, (prob.feat_train, prob.y_train), (prob.feat_test[t_idx], prob.y_test[t_idx]),
                    weight_decay=wd)
    losses = np.asarray(head_loss(p, prob.feat_test, prob.y_test))
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {k: [] for k in ("job", "chosen", "test_index", "removed", "predicted", "actual",
                                             "iterations", "grad_norm")}
    for k, name in enumerate(picks):
        if name not in jobs:
            continue
        ti = int(t_idx[k])
        predicted = np.asarray(res.removal[k])
        top = np.argsort(-np.abs(predicted))[:largest]
        drawn = rng.choice(np.setdiff1d(np.arange(n), top), random, replace=False)
        for chosen, removed in (("largest", top), ("random", drawn)):
            for j in removed:
                loo = fit(head_loss, p, prob.feat_train, prob.y_train, weight_decay=wd,
                          weights=removal_weights(n, [j])[0].astype(np.float32), tol=HEAD_SETTINGS["tol"],
                          maxiter=maxiter)
                after = float(head_loss(loo.params, prob.feat_test[ti : ti + 1], prob.y_test[ti : ti + 1])[0])
                for key, v in (("job", name), ("chosen", chosen), ("test_index", ti), ("removed", int(j)),
                               ("predicted", predicted[j]), ("actual", after - losses[ti]),
                               ("iterations", int(loo.iterations)), ("grad_norm", float(loo.grad_norm))):
                    rows[key].append(v)
    out = {k: np.array(v) for k, v in rows.items()}
    out.update({"config_largest": np.array(largest), "config_random": np.array(random), "config_seed": np.array(seed),
                "config_jobs": np.array(jobs), "config_maxiter": np.array(maxiter),
                "config_weight_decay": np.array(wd), "config_command": np.array(command),
                "config_jax": np.array(jax.__version__)})
    return out


# ----------------------------------------------------------------------------- mislabelled peptides

MISLABEL_FILE = "influence_mislabel.npz"
LOGIT = "hemolysis_cnn/logit"  # the head's last layer: w [64, 1], no bias


def hidden_units(params: Params, f: jax.Array) -> jax.Array:
    """`[B, 64]`: the head's last hidden layer on features `f [B, 53]`, computed as the
    derivative of the logit with respect to the last layer's weights (the logit is linear
    in them), one forward-mode Jacobian."""
    q = params[LOGIT]["w"][:, 0]
    return jax.jacfwd(lambda w: _head_model().apply({**params, LOGIT: {"w": w[:, None]}}, f))(q)


def last_layer_loss(q: jax.Array, h: jax.Array, y: jax.Array) -> jax.Array:
    """Per-example loss `[B]` of the head's last layer `q [64]` on hidden units `h [B, 64]`."""
    return optax.sigmoid_binary_cross_entropy(h @ q, y)


def flip_labels(y, *, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`(y_noisy [N], flipped [R])`: `round(fraction N)` labels chosen with `seed`, flipped."""
    y = np.asarray(y)
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    flipped = np.sort(np.random.default_rng(seed).choice(len(y), int(round(fraction * len(y))), replace=False))
    noisy = y.copy()
    noisy[flipped] = 1 - noisy[flipped]
    return noisy, flipped


def mislabel_study(*, flip_seeds: tuple[int, ...] = (0, 1, 2), fraction: float = 0.1, init_seed: int = 0,
                   settings: dict | None = None, command: str = "") -> dict[str, np.ndarray]:
    """Koh & Liang's section 5.4 on the head: for each seed of `flip_seeds`, flip `fraction`
    of the training labels (`flip_labels`), train the head on them (the SGD phase of
    `train_head`, init `init_seed`), then fit its last layer to the minimum of R with the
    layers below fixed (Newton, float64: a convex problem in 64 weights), and score every
    training peptide, `[S, N]` each: `self_influence` (exact, that last layer),
    `tracin_self` (all parameters, the SGD checkpoints), `train_loss` (final parameters,
    noisy labels); the same for the convex model of the chapter (`convex_self_influence`,
    `convex_loss`, Newton in float64, weight decay 1e-3). `flipped [S, R]`."""
    from helpers import data as data_lib
    from helpers import metrics

    settings = {**HEAD_SETTINGS, **(settings or {})}
    wd = settings["weight_decay"]
    lr_k = settings["sgd_lr"] / settings["batch_size"] * settings["every"]
    prob = head_problem()
    y = np.asarray(prob.y_train)
    train_x = data_lib.load_split("train").x
    out: dict[str, list] = {k: [] for k in ("flipped", "self_influence", "tracin_self", "train_loss", "iterations",
                                             "grad_norm", "test_auroc", "convex_self_influence", "convex_loss")}
    for fs in flip_seeds:
        noisy, flipped = flip_labels(y, fraction=fraction, seed=fs)
        yn = jnp.asarray(noisy, jnp.float32)
        run = train_head(prob.feat_train, yn, seed=init_seed, **{**settings, "polish": False})
        h = hidden_units(run.sgd_params, prob.feat_train)  # [N, 64], fixed from here on
        with jax.enable_x64(True):
            last = fit(last_layer_loss, np.asarray(run.sgd_params[LOGIT]["w"][:, 0], np.float64),
                       np.asarray(h, np.float64), noisy.astype(np.float64), weight_decay=wd, method="newton",
                       tol=1e-10)
            last_iters, last_gn = int(last.iterations), float(last.grad_norm)
            q = jnp.asarray(np.asarray(last.params), jnp.float32)
        p = {**run.sgd_params, LOGIT: {"w": q[:, None]}}
        out["flipped"].append(flipped)
        out["self_influence"].append(np.asarray(self_influence(last_layer_loss, q, h, yn, weight_decay=wd)))
        out["tracin_self"].append(np.asarray(tracin_self(head_loss, run.checkpoints, [lr_k] * len(run.checkpoints),
                                                         prob.feat_train, yn)))
        out["train_loss"].append(np.asarray(head_loss(p, prob.feat_train, yn)))
        out["iterations"].append(last_iters)
        out["grad_norm"].append(last_gn)
        out["test_auroc"].append(metrics.auroc(np.asarray(prob.y_test), np.asarray(_head_model().apply(p, prob.feat_test))))
        with jax.enable_x64(True):
            comp = np.asarray(composition_features(train_x), np.float64)
            yc = noisy.astype(np.float64)
            cfit = fit(logistic_loss, {"w": jnp.zeros(20), "b": jnp.zeros(())}, comp, yc, weight_decay=1e-3,
                       method="newton", tol=1e-12)
            out["convex_self_influence"].append(np.asarray(self_influence(logistic_loss, cfit.params, comp, yc,
                                                                          weight_decay=1e-3)))
            out["convex_loss"].append(np.asarray(logistic_loss(cfit.params, comp, yc)))
    res = {k: np.array(v) for k, v in out.items()}
    res.update({"config_flip_seeds": np.array(flip_seeds), "config_fraction": np.array(fraction),
                "config_init_seed": np.array(init_seed), "config_command": np.array(command),
                "config_jax": np.array(jax.__version__)})
    res.update({f"config_{k}": np.array(v) for k, v in settings.items() if k not in ("tol", "maxiter")})
    return res


def found_curve(scores, flipped, *, fractions) -> np.ndarray:
    """`[F]`: the fraction of `flipped` indices among the top `ceil(f N)` of `scores` (checked
    in decreasing order) for each f of `fractions`; ties broken by index."""
    scores = np.asarray(scores)
    n = scores.shape[0]
    order = np.argsort(-scores, kind="stable")
    hit = np.isin(order, np.asarray(flipped))
    cum = np.concatenate([[0], np.cumsum(hit)])
    k = np.ceil(np.asarray(fractions) * n).astype(int)
    return cum[np.clip(k, 0, n)] / len(flipped)


# ----------------------------------------------------------------------------- damping

DAMPING_FILE = "influence_damping.npz"


def damping_study(*, dampings: tuple[float, ...] = (1e-3, 1e-2, 1e-1), removals: int = 8, maxiter: int = 3000,
                  cg_maxiter: int = 500, command: str = "") -> dict[str, np.ndarray]:
    """Damped influence against the proximal response it approximates (Bae et al. 2022), on
    the shipped head and its test peptide of largest loss (`test_index`): the `removals`
    training peptides of largest undamped predicted effect (`removed [R]`); for each damping
    d, CG on (H + d I) (`cg_iterations [D]`), the predicted effects (`predicted [D, R]`) and
    the retrained ones, L-BFGS from theta-hat on R without the peptide plus
    (d / 2)|theta - theta-hat|^2 (`proximal [D, R]`, `prox_iterations`, `prox_grad_norm`)."""
    st = load_head_study()
    p = st.params
    prob = head_problem()
    wd = HEAD_SETTINGS["weight_decay"]
    n = len(prob.y_train)
    losses = np.asarray(head_loss(p, prob.feat_test, prob.y_test))
    ti = int(np.argmax(losses))
    test = (prob.feat_test[ti : ti + 1], prob.y_test[ti : ti + 1])
    hvp = make_hvp(head_loss, p, prob.feat_train, prob.y_train, weight_decay=wd)
    g = per_example_grads(head_loss, p, *test)

    def predict(d):
        sol = conjugate_gradient(hvp, g, damping=d, maxiter=cg_maxiter)
        return np.asarray(directional_derivatives(head_loss, p, prob.feat_train, prob.y_train, sol.x))[0] / n, sol

    pred0, sol0 = predict(0.0)
    removed = np.argsort(-np.abs(pred0))[:removals]
    out: dict[str, list] = {k: [] for k in ("predicted", "cg_iterations", "cg_residual", "proximal",
                                             "prox_iterations", "prox_grad_norm")}
    for d in dampings:
        pred, sol = predict(d)
        out["predicted"].append(pred[removed])
        out["cg_iterations"].append(int(np.asarray(sol.iterations)[0]))
        out["cg_residual"].append(float(np.asarray(sol.residual)[0]))
        acts, its, gns = [], [], []
        for j in removed:
            r = fit(head_loss, p, prob.feat_train, prob.y_train, weight_decay=wd, proximal=d,
                    weights=removal_weights(n, [j])[0].astype(np.float32), tol=HEAD_SETTINGS["tol"], maxiter=maxiter)
            acts.append(float(head_loss(r.params, *test)[0]) - losses[ti])
            its.append(int(r.iterations))
            gns.append(float(r.grad_norm))
        out["proximal"].append(acts)
        out["prox_iterations"].append(its)
        out["prox_grad_norm"].append(gns)
    res = {k: np.array(v) for k, v in out.items()}
    res.update({"removed": removed, "predicted_undamped": pred0[removed], "test_index": np.array(ti),
                "cg_iterations_undamped": np.array(int(np.asarray(sol0.iterations)[0])),
                "config_dampings": np.array(dampings), "config_weight_decay": np.array(wd),
                "config_maxiter": np.array(maxiter), "config_command": np.array(command),
                "config_jax": np.array(jax.__version__)})
    return res


def load_study(name: str, path=None) -> dict[str, np.ndarray]:
    """Every array of a shipped study file `name` (or of the file at `path`)."""
    from helpers import model as model_lib

    path = path or model_lib.pretrained_dir() / name
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def main(argv=None) -> None:
    import argparse
    import sys
    import time

    from helpers import model as model_lib

    p = argparse.ArgumentParser(prog="python -m helpers.influence",
                                description="Chapter 9's shipped studies (default: the head at its minimum, two seeds).")
    p.add_argument("--out", default=None, help="output .npz (default: the shipped file)")
    p.add_argument("--small", action="store_true", help="a few steps only: a smoke test")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--weak", action="store_true", help=f"the weak-weight-decay study ({WEAK_FILE})")
    g.add_argument("--mislabel", action="store_true", help=f"mislabelled-peptide detection ({MISLABEL_FILE})")
    g.add_argument("--damping", action="store_true", help=f"damped influence vs proximal retraining ({DAMPING_FILE})")
    g.add_argument("--loo", action="store_true", help=f"leave-one-out retrainings of the head ({LOO_FILE})")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    command = "python -m helpers.influence" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    if a.weak:
        kw = dict(removals=2, lanczos_steps=5, cg_maxiter=5, maxiter=5) if a.small else {}
        out, name = weak_study(command=command, **kw), WEAK_FILE
    elif a.mislabel:
        kw = dict(flip_seeds=(0,), settings={"sgd_epochs": 2, "every": 1}) if a.small else {}
        out, name = mislabel_study(command=command, **kw), MISLABEL_FILE
    elif a.loo:
        kw = dict(largest=2, random=1, jobs=("worst error",)) if a.small else {}
        out, name = loo_study(command=command, **kw), LOO_FILE
    elif a.damping:
        kw = dict(dampings=(1e-1,), removals=2, maxiter=20, cg_maxiter=20) if a.small else {}
        out, name = damping_study(command=command, **kw), DAMPING_FILE
    else:
        settings = {"sgd_epochs": 2, "every": 1, "maxiter": 20} if a.small else {}
        out, name = head_study(settings=settings, command=command), HEAD_FILE
    out_path = a.out or str(model_lib.pretrained_dir() / name)
    np.savez_compressed(out_path, **out)
    print(f"{name}: done in {time.perf_counter() - t0:.0f} s -> {out_path}")
