"""In-silico saturation mutagenesis (ISM) over many peptides, its aggregation by amino acid,
and activation maximisation of a peptide on the simplex.

Shape glossary: B batch, L padded length, A = 21 channels (0 = padding), n residues of one
peptide, P peptides, K = 20 amino acids (`sequences.AMINO_ACIDS` order), M designs.

Saturation mutagenesis replaces every residue by each of the 20 amino acids, one at a time,
and records the change of the logit: an effect map `[n, K]`, zero where the substitute is the
residue already there. `counterfactual.substitution_scan` (chapter 10) does it for one
peptide; `saturation_mutagenesis` does it for many, every variant of every peptide in
fixed-size chunks of one compiled call (so a test set of peptides of many lengths compiles the
model once). For a model that is a sum of per-position terms, `f(x) = sum_l W[l, x_l]`, the
map is exactly `W[i, a] - W[i, x_i]` (tests/test_mutagenesis.py).

Activation maximisation (`design`) optimises a peptide of fixed length as a softmax over
amino acids at each position (the simplex's interior), by gradient ascent on the logit
minus optional priors, and reads it out as the most probable amino acid per position.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from helpers import validation
from helpers.sequences import AMINO_ACIDS, NUM_CHANNELS, encode_batch

K = len(AMINO_ACIDS)  # 20


def cut_length(n: int, *, multiple: int = 32, minimum: int = 32) -> int:
    """The shortest padded length that leaves the course CNN's logit of an n-residue peptide
    unchanged: two padding rows after the last residue (the first convolution, width 5, sees
    the padding channel there), rounded up to `multiple` (a multiple of the pools' product, 4 x 2 x 2 = 16; 32 keeps the
    number of distinct shapes, hence compilations, small)."""
    validation.check_int(n, "n", minimum=1)
    return max(minimum, -(-(n + 2) // multiple) * multiple)


def _check_sequences(sequences) -> list[str]:
    seqs = validation.check_peptides(sequences)
    if not seqs:
        raise ValueError("sequences is empty")
    for i, s in enumerate(seqs):
        if not isinstance(s, str) or not s or any(c not in AMINO_ACIDS for c in s):
            raise ValueError(f"sequences[{i}] must be a peptide of the 20 amino-acid letters, got {s!r}")
    return seqs


def saturation_mutagenesis(f, sequences, *, length: int | None = None, chunk: int = 2048,
                           padding: bool = False) -> list[np.ndarray]:
    """Effect maps of every single substitution, `[n_p, K]` per peptide p: `f(variant) - f(x)`,
    with the variant's residue i replaced by amino acid k (zero where k is the residue already
    there). With `padding=True` the maps are `[n_p, A]`, column 0 the residue replaced by a
    padding row in place (minus window-1 occlusion with `fill="padding"`), then the K amino acids.

    All variants (and the originals) are evaluated in chunks of `chunk` inputs, the last
    chunk of each padded length filled up with copies, so the model compiles once per padded
    length: `length` positions for all peptides, or by default `cut_length(n)` for each
    (peptides grouped by it), which leaves the course CNN's logits unchanged."""
    validation.check_callable(f, "f")
    seqs = _check_sequences(sequences)
    validation.check_int(chunk, "chunk", minimum=1)
    if length is not None:
        validation.check_int(length, "length", minimum=max(len(s) for s in seqs))
    groups: dict[int, list[int]] = {}
    for p, s in enumerate(seqs):
        groups.setdefault(cut_length(len(s)) if length is None else length, []).append(p)
    out: list[np.ndarray] = [np.zeros(0)] * len(seqs)
    for size, members in groups.items():
        for p, e in zip(members, _ism_group(f, [seqs[p] for p in members], size, chunk, padding), strict=True):
            out[p] = e
    return out


def _ism_group(f, seqs: list[str], length: int, chunk: int, padding: bool) -> list[np.ndarray]:
    first = 0 if padding else 1  # the substitutes: channels first .. 20
    m = K + 1 - first
    idx = np.zeros((sum(len(s) * m + 1 for s in seqs), length), np.int32)  # channel per position, 0 = padding
    row = 0
    for s in seqs:
        base = np.array([AMINO_ACIDS.index(c) + 1 for c in s] + [0] * (length - len(s)), np.int32)
        idx[row] = base
        variants = np.repeat(base[None], len(s) * m, axis=0)  # [n m, length]
        variants[np.arange(len(s) * m), np.repeat(np.arange(len(s)), m)] = np.tile(np.arange(first, K + 1), len(s))
        idx[row + 1 : row + 1 + len(s) * m] = variants
        row += 1 + len(s) * m
    logits = np.empty(len(idx))
    size = min(chunk, len(idx))
    for start in range(0, len(idx), size):
        part = idx[start : start + size]
        full = np.concatenate([part, np.repeat(part[:1], size - len(part), axis=0)]) if len(part) < size else part
        xb = jax.nn.one_hot(jnp.asarray(full), NUM_CHANNELS)
        logits[start : start + len(part)] = validation.model_outputs(f, xb)[: len(part)]
    out, row = [], 0
    for s in seqs:
        out.append(logits[row + 1 : row + 1 + len(s) * m].reshape(len(s), m) - logits[row])
        row += 1 + len(s) * m
    return out


def mutational_importance(effects: np.ndarray) -> np.ndarray:
    """`[n]`: the mean drop of the logit over the 19 substitutions of each residue,
    `-sum_k effects[i, k] / 19` (the own amino acid's zero is left out). Positive where
    replacing the residue by anything else lowers the logit on average."""
    e = validation.as_float_array(effects, "effects")
    if e.ndim != 2 or e.shape[1] != K:
        raise ValueError(f"effects must have shape [n, {K}], got {e.shape}")
    return -e.sum(axis=1) / (K - 1)


class ByAminoAcid(NamedTuple):
    mean: np.ndarray  # [K] mean score of the residues of each amino acid (NaN where absent)
    se: np.ndarray  # [K] its standard error, clustered by peptide
    count: np.ndarray  # [K] residues


def amino_acid_sums(scores, sequences) -> tuple[np.ndarray, np.ndarray]:
    """`(sums [P, K], counts [P, K])`: per peptide, the summed per-residue scores (a list of
    `[n_p]`) of each amino acid and how many residues it has (what `by_amino_acid` and a
    bootstrap over peptides resample)."""
    seqs = _check_sequences(sequences)
    scores = list(scores)
    if len(scores) != len(seqs):
        raise ValueError(f"{len(scores)} score vectors for {len(seqs)} sequences")
    S = np.zeros((len(seqs), K))
    N = np.zeros((len(seqs), K))
    for p, (s, sc) in enumerate(zip(seqs, scores, strict=True)):
        sc = np.asarray(sc, dtype=float)
        if sc.shape != (len(s),) or not np.isfinite(sc).all():
            raise ValueError(f"scores[{p}] must be {len(s)} finite values (one per residue of {s}), got shape {sc.shape}")
        k = np.array([AMINO_ACIDS.index(c) for c in s])
        np.add.at(S[p], k, sc)
        np.add.at(N[p], k, 1.0)
    return S, N


def by_amino_acid(scores, sequences) -> ByAminoAcid:
    """Per-residue scores (a list of `[n_p]`) averaged over all residues of each amino acid,
    with a standard error clustered by peptide (each peptide's residues of one amino acid
    are one draw: the ratio estimator's sandwich variance)."""
    S, N = amino_acid_sums(scores, sequences)
    count = N.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = S.sum(axis=0) / count
        held = (N > 0).sum(axis=0)
        resid = ((S - mean * N) ** 2).sum(axis=0)
        se = np.where(held > 1, np.sqrt(held / np.maximum(held - 1, 1) * resid) / count, np.nan)
    return ByAminoAcid(mean, se, count)


class SubstitutionFit(NamedTuple):
    coef: np.ndarray  # [F + 1] intercept, then one slope per feature
    boot: np.ndarray  # [R, F + 1] the same on bootstrap resamples of the peptides
    n: int  # substitutions in the fit


def substitution_regression(effects, sequences, features, *, n_resamples: int = 1000, seed: int = 0) -> SubstitutionFit:
    """Least squares of every substitution's effect `e[i, a]` (a != x_i; `effects` a list of
    `[n_p, K]` maps, as from `saturation_mutagenesis`) on how much the substitution changes
    each per-amino-acid feature, `features[a, f] - features[x_i, f]` (`features [K, F]`, e.g.
    charge and hydropathy), with an intercept. A slope is the partial effect of a unit change
    of one feature with the others held fixed. Peptides are resampled with replacement
    (their substitutions are not independent) for `n_resamples` bootstrap fits.
    For a model whose per-position table is linear in the features, the slopes are exact."""
    seqs = _check_sequences(sequences)
    maps = list(effects)
    if len(maps) != len(seqs):
        raise ValueError(f"{len(maps)} effect maps for {len(seqs)} sequences")
    feat = validation.as_float_array(features, "features")
    if feat.ndim != 2 or feat.shape[0] != K or not np.isfinite(feat).all():
        raise ValueError(f"features must be a finite matrix [{K}, F], got shape {feat.shape}")
    validation.check_int(n_resamples, "n_resamples", minimum=1)
    validation.check_int(seed, "seed", minimum=0)
    d = feat.shape[1] + 1
    xtx, xty = np.zeros((len(seqs), d, d)), np.zeros((len(seqs), d))
    n = 0
    for p, (s, m) in enumerate(zip(seqs, maps, strict=True)):
        m = np.asarray(m, dtype=float)
        if m.shape != (len(s), K) or not np.isfinite(m).all():
            raise ValueError(f"effects[{p}] must be a finite map [{len(s)}, {K}], got shape {m.shape}")
        own = np.array([AMINO_ACIDS.index(c) for c in s])
        keep = np.arange(K)[None] != own[:, None]  # [n_p, K]: leave out x_i -> x_i
        delta = (feat[None] - feat[own][:, None])[keep]  # [n_p 19, F]
        design = np.concatenate([np.ones((len(delta), 1)), delta], axis=1)
        xtx[p], xty[p] = design.T @ design, design.T @ m[keep]
        n += len(delta)
    if n == 0:
        raise ValueError("sequences: no substitutions to fit (every peptide is empty)")
    rank = np.linalg.matrix_rank(xtx.sum(0), hermitian=True)
    if rank < d:
        raise ValueError(f"features: the {d - 1} feature differences and the intercept have rank {rank} < {d} over "
                         f"these substitutions (a constant column, or columns that are linear combinations of "
                         f"each other), so the slopes are not identified; drop or combine the columns")
    coef = np.linalg.lstsq(xtx.sum(0), xty.sum(0), rcond=None)[0]
    rng = np.random.default_rng(seed)
    weights = np.stack([np.bincount(rng.integers(0, len(seqs), len(seqs)), minlength=len(seqs)) for _ in range(n_resamples)])
    a, b = np.einsum("rp,pij->rij", weights, xtx), np.einsum("rp,pi->ri", weights, xty)
    boot = np.stack([np.linalg.lstsq(a_r, b_r, rcond=None)[0] for a_r, b_r in zip(a, b)])
    return SubstitutionFit(coef, boot, n)


# ----------------------------------------------------------------------------- activation maximisation


class Design(NamedTuple):
    sequences: list[str]  # [M] the most probable amino acid per position
    probabilities: np.ndarray  # [M, n, K] the optimised softmax
    soft_logit: np.ndarray  # [M] the model's logit of the soft input
    logit: np.ndarray  # [M] the model's logit of the read-out peptide


def soft_peptide(theta: jax.Array, length: int) -> jax.Array:
    """`theta [M, n, K]` -> inputs `[M, length, A]`: a softmax over the amino acids at each of
    the n positions, padding rows after them."""
    p = jax.nn.softmax(theta, axis=-1)
    m, n, _ = theta.shape
    residues = jnp.concatenate([jnp.zeros((m, n, 1)), p], axis=-1)
    padding = jnp.zeros((m, length - n, NUM_CHANNELS)).at[..., 0].set(1.0)
    return jnp.concatenate([residues, padding], axis=1)


def design(f, *, n: int, key, starts: int = 8, steps: int = 300, learning_rate: float = 0.1,
           entropy_weight: float = 0.0, composition=None, composition_weight: float = 0.0) -> Design:
    """Activation maximisation: `starts` peptides of `n` residues, each position a softmax
    over the K amino acids, optimised with Adam for `steps` steps on

        f(x) - entropy_weight * mean_i H(p_i) - composition_weight * KL(composition || mean_i p_i)

    The entropy term pushes every position towards one amino acid (a real peptide); the
    composition term keeps the amino-acid content of the design near `composition [K]` (e.g.
    the training set's). Returns the read-out (argmax) peptides with both logits."""
    validation.check_callable(f, "f")
    validation.check_key(key)
    n = validation.check_int(n, "n", minimum=1, maximum=200)
    validation.check_int(starts, "starts", minimum=1)
    validation.check_int(steps, "steps", minimum=1)
    validation.check_number(learning_rate, "learning_rate", positive=True)
    validation.check_number(entropy_weight, "entropy_weight", nonnegative=True)
    validation.check_number(composition_weight, "composition_weight", nonnegative=True)
    if composition is None:
        if composition_weight > 0:
            raise ValueError("composition_weight > 0 needs a composition [20] to stay near")
        q = jnp.full(K, 1.0 / K)
    else:
        q = jnp.asarray(validation.as_float_array(composition, "composition"))
        if q.shape != (K,) or (q <= 0).any() or abs(float(q.sum()) - 1) > 1e-6:
            raise ValueError(f"composition must be {K} positive fractions summing to 1, got shape {q.shape}")
    length = cut_length(n)
    theta0 = jnp.stack([0.01 * jax.random.normal(jax.random.fold_in(key, j), (n, K)) for j in range(starts)])  # start j: its own key
    if not isinstance(f, jax.tree_util.Partial):
        f = jax.tree_util.Partial(f)  # a pytree argument of the compiled ascent
    theta = _ascent(f, theta0, q, jnp.float32(entropy_weight), jnp.float32(composition_weight),
                    steps=steps, length=length, learning_rate=float(learning_rate))
    p = np.asarray(jax.nn.softmax(theta, axis=-1))
    seqs = ["".join(AMINO_ACIDS[k] for k in row) for row in p.argmax(-1)]
    soft = validation.model_outputs(f, soft_peptide(theta, length))
    hard = validation.model_outputs(f, jnp.asarray(encode_batch(seqs, length=length)))
    return Design(seqs, p, soft, hard)


@functools.partial(jax.jit, static_argnames=("steps", "length", "learning_rate"))
def _ascent(f, theta, q, entropy_weight, composition_weight, *, steps: int, length: int, learning_rate: float):
    """Adam ascent of `design`'s objective; `f` is a jax Partial (a pytree), so every model of
    one architecture and every prior weight share one compiled program."""
    opt = optax.adam(learning_rate)

    def objective(th):
        p = jax.nn.softmax(th, axis=-1)
        entropy = -(p * jnp.log(p + 1e-12)).sum(-1).mean(-1)  # [M]
        kl = (q * (jnp.log(q) - jnp.log(p.mean(axis=1) + 1e-12))).sum(-1)  # [M]
        return (f(soft_peptide(th, length)) - entropy_weight * entropy - composition_weight * kl).sum()

    def step(carry, _):
        th, state = carry
        updates, state = opt.update(-jax.grad(objective)(th), state)  # ascent
        return (optax.apply_updates(th, updates), state), None

    (theta, _), _ = jax.lax.scan(step, (theta, opt.init(theta)), None, length=steps)
    return theta
