"""Concepts in the hidden layers: concept activation vectors (TCAV) and linear probes.

Shape glossary: B batch, L padded length, A = 21 channels, C conv channels, D the width of
one layer's representation, R runs (random counterexample sets), N peptides.

Layers. `layer_activations` runs the course CNN (`helpers.model`) once and reads, through
Haiku's method interception (no copy of the architecture), the outputs of its modules:

- `conv0`, `conv1`, `conv2`: each convolution's output *before* the activation,
  `[B, L_i, C]`, summarised per peptide as the mean over the positions that hold residues
  (weighted by the share of residues in each pooled window, as the model's own mask is)
  -> `[B, C]`;
- `features`: the head's input `[B, F]` (pooled conv features, amino-acid fractions,
  length / 100);
- `dense0`, `dense1`: the dense layers' outputs before their activation, `[B, 256]`, `[B, 64]`.

Directional derivatives. `layer_gradients` returns d logit / d representation `[B, D]`
per layer. For a conv layer the representation is a mean over positions, and moving it by
`eps v` is moving every residue position's channel vector by `eps v`; so its gradient is
the sum over positions of the gradient of the logit with respect to the conv output (a
shift at padding positions changes nothing: the model multiplies them by 0).

TCAV (Kim et al. 2018): a CAV is the unit normal of a linear classifier that separates a
concept's examples from random examples in one layer, pointing towards the concept; the
TCAV score of a class is the fraction of that class's inputs whose logit grows along it
(`grads @ cav > 0`). Repeated against many random counterexample sets, the concept's scores
are compared with those of random CAVs (random set against random set) by a two-sided
Student's t-test, as the reference implementation does (`scipy.stats.ttest_ind`).

Probes (Hewitt & Liang 2019): a ridge regression reads a descriptor from a layer; the
control task is a descriptor of the same form with random per-amino-acid values (each
amino acid is given a value at random, the peptide's value is the mean over its residues),
which a probe can only read if the layer keeps the composition, not if it has picked out the
chemistry. Selectivity = R²(descriptor) - R²(control).
"""

from __future__ import annotations

from typing import NamedTuple

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold

from helpers import validation
from helpers.model import HemolysisCNN
from helpers.sequences import AMINO_ACIDS, NUM_CHANNELS, encode_batch

CONV_LAYERS = ("conv0", "conv1", "conv2")
LAYERS = CONV_LAYERS + ("features", "dense0", "dense1")
TCAV_LAYERS = CONV_LAYERS + ("features", "dense1")  # dense0 (256 units) is wider than a CAV's 100 examples


def _check_x(x) -> jax.Array:
    if np.ndim(x) != 3 or np.shape(x)[-1] != NUM_CHANNELS:
        raise ValueError(f"x must be one-hot peptides of shape [B, L, 21], got shape {np.shape(x)}")
    return jnp.asarray(x, jnp.float32)


def _forward(x, deltas, config):
    """Logits `[B]` and the raw outputs of every layer in `LAYERS`; `deltas` (or None) are
    added to those outputs, so that gradients with respect to them are the layers'."""
    seen: dict[str, jax.Array] = {}

    def interceptor(next_f, args, kwargs, context):
        if context.method_name != "__call__":
            return next_f(*args, **kwargs)
        name = context.module.module_name.rsplit("/", 1)[-1]
        if name == "dense0":  # its input is the head's feature vector
            h = args[0] if deltas is None else args[0] + deltas["features"]
            seen["features"] = h
            args = (h,) + tuple(args[1:])
        out = next_f(*args, **kwargs)
        if name in LAYERS:
            out = out if deltas is None else out + deltas[name]
            seen[name] = out
        return out

    with hk.experimental.intercept_methods(interceptor):
        logits = HemolysisCNN(**config)(x)
    return logits, seen


_transformed = {}


def _fns(config: tuple):
    if config not in _transformed:
        fwd = hk.without_apply_rng(hk.transform(lambda x, d: _forward(x, d, dict(config))))

        def outputs(params, x):
            return fwd.apply(params, x, None)

        def grads(params, x, deltas):
            return jax.grad(lambda d: fwd.apply(params, x, d)[0].sum())(deltas)

        _transformed[config] = (jax.jit(outputs), jax.jit(grads))
    return _transformed[config]


def _masks(x: np.ndarray, pools: tuple[int, ...]) -> list[np.ndarray]:
    """Residue share per position at the input of each conv layer: `[B, L_i]` each."""
    m = np.asarray(x)[..., 1:].sum(axis=-1)
    out = [m]
    for p in pools[:-1]:
        m = np.pad(m, ((0, 0), (0, -m.shape[1] % p))).reshape(len(m), -1, p).mean(axis=2)
        out.append(m)
    return out


def layer_activations(params, x, *, batch: int = 512, **config) -> dict[str, np.ndarray]:
    """`{layer: [B, D]}` for every layer in `LAYERS` (see the module docstring), from
    one-hot peptides `x [B, L, 21]`; `config` as for `helpers.model.make_model`."""
    x = _check_x(x)
    validation.check_int(batch, "batch", minimum=1)
    outputs, _ = _fns(tuple(sorted(config.items())))
    pools = config.get("pools", (4, 2, 2))
    parts = []
    for s in range(0, len(x), batch):
        xb = x[s : s + batch]
        _, seen = outputs(params, xb)
        masks = _masks(np.asarray(xb), pools)
        rep = {}
        for name in LAYERS:
            v = np.asarray(seen[name], np.float64)
            if name in CONV_LAYERS:
                w = masks[CONV_LAYERS.index(name)]
                v = np.einsum("bl,blc->bc", w, v) / w.sum(axis=1, keepdims=True)
            rep[name] = v
        parts.append(rep)
    return {name: np.concatenate([p[name] for p in parts]) for name in LAYERS}


def layer_gradients(params, x, *, batch: int = 512, **config) -> dict[str, np.ndarray]:
    """`{layer: [B, D]}`: the gradient of each peptide's logit with respect to each layer's
    representation (for conv layers summed over positions; module docstring)."""
    x = _check_x(x)
    validation.check_int(batch, "batch", minimum=1)
    outputs, grads = _fns(tuple(sorted(config.items())))
    parts = []
    for s in range(0, len(x), batch):
        xb = x[s : s + batch]
        shapes = jax.eval_shape(outputs, params, xb)[1]
        deltas = {k: jnp.zeros(v.shape, v.dtype) for k, v in shapes.items()}
        g = grads(params, xb, deltas)
        parts.append({k: np.asarray(v.sum(axis=1) if k in CONV_LAYERS else v, np.float64) for k, v in g.items()})
    return {name: np.concatenate([p[name] for p in parts]) for name in LAYERS}


# ----------------------------------------------------------------------------- CAVs


def _check_acts(a, name: str, d: int | None = None) -> np.ndarray:
    a = validation.as_float_array(a, name)
    if a.ndim != 2 or len(a) < 2 or (d is not None and a.shape[1] != d):
        want = f"[N, {d}]" if d is not None else "[N, D]"
        raise ValueError(f"{name} must be activations {want} with N >= 2, got shape {a.shape}")
    validation.check_finite(a, name)
    return a


def train_cav(concept, random, *, seed: int = 0, held_out: float = 1 / 3) -> tuple[np.ndarray, float]:
    """The concept activation vector of `concept [P, D]` against `random [Q, D]`: the unit
    normal `[D]` of a logistic regression on standardised activations, mapped back to the
    layer's own coordinates and pointing towards the concept; and its accuracy on a held-out
    share `held_out` of both sets (the classifier is then refitted on all of them)."""
    concept = _check_acts(concept, "concept")
    random = _check_acts(random, "random", concept.shape[1])
    validation.check_int(seed, "seed")
    validation.check_number(held_out, "held_out", positive=True)
    if held_out >= 1:
        raise ValueError(f"held_out must be below 1, got {held_out}")
    a = np.concatenate([concept, random])
    y = np.r_[np.ones(len(concept)), np.zeros(len(random))]
    order = np.random.default_rng(seed).permutation(len(a))
    k = max(1, int(round(held_out * len(a))))
    test, train = order[:k], order[k:]

    def fit(rows):  # returns the weights [D] on standardised inputs, the bias, mean, sd
        mu, sd = a[rows].mean(0), a[rows].std(0) + 1e-12
        w, b = logistic_fit((a[rows] - mu) / sd, y[rows])
        return w, b, mu, sd

    w, b, mu, sd = fit(train)
    accuracy = float(((((a[test] - mu) / sd) @ w + b > 0) == y[test]).mean())
    w, _, _, sd = fit(np.arange(len(a)))
    v = w / sd  # the boundary's normal in the layer's coordinates
    return v / np.linalg.norm(v), accuracy


def logistic_fit(z, y, *, penalty: float = 1.0, steps: int = 50) -> tuple[np.ndarray, float]:
    """L2-penalised logistic regression by Newton's method: minimises
    `sum_i log(1 + exp(-s_i (z_i . w + b))) + penalty / 2 |w|^2` (s = +-1, bias not
    penalised) over `z [N, D]`, `y [N]` in {0, 1}; the optimum of scikit-learn's
    `LogisticRegression(C=1 / penalty)`, without its per-call overhead (tested against it)."""
    z = np.asarray(z, float)
    y = np.asarray(y, float)
    n, d = z.shape
    zb = np.column_stack([z, np.ones(n)])
    reg = penalty * np.r_[np.ones(d), 0.0]
    theta = np.zeros(d + 1)
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(zb @ theta)))
        g = zb.T @ (p - y) + reg * theta
        h = (zb * (p * (1 - p))[:, None]).T @ zb + np.diag(reg + 1e-10)
        step = np.linalg.solve(h, g)
        theta -= step
        if np.abs(step).max() < 1e-10:
            break
    return theta[:d], float(theta[d])


def tcav_score(grads, cav) -> float:
    """Fraction of inputs whose logit grows along `cav [D]`: `mean(grads [N, D] @ cav > 0)`."""
    grads = _check_acts(grads, "grads")
    cav = validation.as_float_array(cav, "cav")
    if cav.shape != (grads.shape[1],):
        raise ValueError(f"cav must have shape [{grads.shape[1]}] to match grads, got {cav.shape}")
    return float((grads @ cav > 0).mean())


class TCAVResult(NamedTuple):
    concept_scores: np.ndarray  # [R] TCAV score of the concept's CAV against each random set
    random_scores: np.ndarray  # [R] TCAV score of random CAVs (random set r against r + 1)
    accuracy: np.ndarray  # [R] held-out accuracy of the concept's CAVs
    t: float  # Student's t of concept vs random scores (two-sided test)
    p: float


def random_sets(n_pool: int, *, runs: int, size: int, seed: int) -> np.ndarray:
    """`[runs + 1, size]` row indices into a pool of `n_pool` examples: the random
    counterexample sets (drawn without replacement within a set)."""
    validation.check_int(n_pool, "n_pool", minimum=1)
    validation.check_int(runs, "runs", minimum=2)
    validation.check_int(size, "size", minimum=2, maximum=n_pool)
    rng = np.random.default_rng(seed)
    return np.stack([rng.choice(n_pool, size, replace=False) for _ in range(runs + 1)])


def tcav(acts_pool, grads, concept_rows, sets, *, seed: int = 0, random_cavs=None) -> TCAVResult:
    """TCAV with its test in one layer.

    `acts_pool [N, D]`: activations of the example pool; `concept_rows [R, P]`: the
    concept's examples for each run (rows of the pool); `sets [R + 1, Q]` from
    `random_sets`; `grads [M, D]`: gradients of the explained class's inputs. Run r trains a
    CAV of the concept against random set r and a random CAV of set r against set r + 1.
    `random_cavs [R, D]` reuses random CAVs already trained (they do not depend on the concept).
    """
    acts_pool = _check_acts(acts_pool, "acts_pool")
    grads = _check_acts(grads, "grads", acts_pool.shape[1])
    concept_rows = np.asarray(concept_rows)
    sets = np.asarray(sets)
    if concept_rows.ndim != 2 or sets.ndim != 2 or len(sets) != len(concept_rows) + 1:
        raise ValueError(f"concept_rows must be [R, P] and sets [R + 1, Q], got {concept_rows.shape} and {sets.shape}")
    runs = len(concept_rows)
    if random_cavs is None:
        random_cavs = random_cav_set(acts_pool, sets, seed=seed)
    scores, acc = [], []
    for r in range(runs):
        v, a = train_cav(acts_pool[concept_rows[r]], acts_pool[sets[r]], seed=seed + r)
        scores.append(tcav_score(grads, v))
        acc.append(a)
    rand = np.array([tcav_score(grads, v) for v in random_cavs])
    scores = np.array(scores)
    if np.ptp(np.r_[scores, rand]) == 0:
        t, p = 0.0, 1.0
    else:
        t, p = stats.ttest_ind(scores, rand)
    return TCAVResult(scores, rand, np.array(acc), float(t), float(p))


def random_cav_set(acts_pool, sets, *, seed: int = 0) -> np.ndarray:
    """`[R, D]`: CAVs of random set r against random set r + 1 (`sets [R + 1, Q]`)."""
    acts_pool = _check_acts(acts_pool, "acts_pool")
    sets = np.asarray(sets)
    return np.stack([train_cav(acts_pool[sets[r]], acts_pool[sets[r + 1]], seed=seed + r)[0] for r in range(len(sets) - 1)])


def concept_rows(is_concept, *, runs: int, size: int, seed: int) -> np.ndarray:
    """`[runs, size]` rows drawn (without replacement within a run) from those where the
    boolean `is_concept [N]` holds."""
    pool = np.flatnonzero(np.asarray(is_concept, dtype=bool))
    validation.check_int(size, "size", minimum=2)
    if len(pool) < size:
        raise ValueError(f"is_concept holds for {len(pool)} examples, fewer than size={size}")
    rng = np.random.default_rng(seed)
    return np.stack([rng.choice(pool, size, replace=False) for _ in range(runs)])


# ----------------------------------------------------------------------------- probes


def control_descriptor(seqs, *, seed: int) -> np.ndarray:
    """`[N]`: the mean over each peptide's residues of a random value per amino acid
    (standard normal, drawn once from `seed`): Hewitt and Liang's control task, a property
    of the same form as mean hydropathy with no chemistry behind it."""
    seqs = validation.check_peptides(seqs, "seqs")
    values = np.random.default_rng(seed).standard_normal(len(AMINO_ACIDS))
    x = encode_batch(seqs, length=max(len(s) for s in seqs))
    counts = x[..., 1:].sum(axis=1)
    return counts @ values / counts.sum(axis=1)


def probe_r2(acts, targets, *, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Cross-validated R² `[folds, T]` of ridge probes (standardised inputs, each target's
    penalty chosen among 1e-3..1e3 by leave-one-out on the training folds) reading each
    column of `targets [N, T]` (or `[N]`, giving `[folds, 1]`) from `acts [N, D]`."""
    acts = _check_acts(acts, "acts")
    targets = validation.as_float_array(targets, "targets")
    targets = targets[:, None] if targets.ndim == 1 else targets
    if targets.ndim != 2 or len(targets) != len(acts):
        raise ValueError(f"targets must have shape [{len(acts)}] or [{len(acts)}, T] to match acts, got {targets.shape}")
    validation.check_finite(targets, "targets")
    validation.check_int(folds, "folds", minimum=2)
    out = []
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(acts):
        mu, sd = acts[train].mean(0), acts[train].std(0) + 1e-12
        probe = RidgeCV(alphas=np.logspace(-3, 3, 7), alpha_per_target=True).fit((acts[train] - mu) / sd, targets[train])
        pred = probe.predict((acts[test] - mu) / sd).reshape(len(test), -1)
        resid = ((targets[test] - pred) ** 2).sum(0)
        total = ((targets[test] - targets[test].mean(0)) ** 2).sum(0)
        out.append(1.0 - resid / total)
    return np.array(out)
