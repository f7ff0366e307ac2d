"""Shapley values of residues: exact enumeration, permutation sampling, KernelSHAP; and
the Banzhaf value, which a sampler that keeps each residue with probability 1/2 estimates.

Shape glossary: n residues of one peptide (the players), C coalitions, P permutations,
M references per coalition (see `helpers.perturbation`).

The game is `helpers.perturbation.make_game`: v(S) is the expected logit when the residues
outside S are replaced from background peptides (interventional, the default of SHAP's
maskers) or from one baseline. Every estimator returns a `ShapleyResult` with its efficiency
gap `sum(phi) - (v(all) - v(none))`, where v(all) = f(x) and v(none) is the mean logit of
the background peptides seen through x's residue positions, and the model calls it made.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from helpers import validation
from helpers.attribution import PredictFn
from helpers.perturbation import Game, check_key, make_game

MAX_EXACT_PLAYERS = 14
MAX_ENUMERATED_PLAYERS = 24  # all_coalitions: 2^24 x 24 booleans = 400 MB
MAX_KERNEL_SAMPLES = 1 << 22  # kernel_shap's budget: beyond, the coalition lists need GBs


class ShapleyResult(NamedTuple):
    values: np.ndarray  # [n] Shapley values (logit units)
    stderr: np.ndarray | None  # [n] standard errors (sampling estimators), None when exact
    gap: float  # efficiency gap: sum(values) - (f_x - f_empty)
    f_x: float  # v(all residues) = f(x)
    f_empty: float  # v(no residue): mean logit over the references
    coalitions: int  # coalitions evaluated (including all and none)
    model_calls: int  # model forward passes: coalitions x references


def _result(game: Game, values: np.ndarray, stderr, coalitions: int) -> ShapleyResult:
    values = np.asarray(values, dtype=np.float64)
    gap = float(values.sum() - (game.full - game.empty))
    return ShapleyResult(values, stderr, gap, game.full, game.empty, coalitions, game.calls)


def all_coalitions(n: int) -> np.ndarray:
    """`[2^n, n]` bool: row s is the coalition whose bit i (of the integer s) is player i."""
    validation.check_int(n, "n", minimum=0)
    if n > MAX_ENUMERATED_PLAYERS:
        raise ValueError(f"n = {n} players have 2^{n} = {2**n:,} coalitions, too many to list "
                         f"(limit {MAX_ENUMERATED_PLAYERS} players): sample them instead (shapley_permutation, kernel_shap)")
    return ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(bool)


def shapley_weights(n: int) -> np.ndarray:
    """`[n]`: the weight |S|! (n - |S| - 1)! / n! of a coalition of size |S| = 0 .. n-1 in
    a player's Shapley value."""
    validation.check_int(n, "n", minimum=1)
    return np.array([math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)])


def shapley_from_values(v: np.ndarray, n: int) -> np.ndarray:
    """Exact Shapley values `[n]` from the values `v [2^n]` of all coalitions (indexed as
    in `all_coalitions`): phi_i = sum over S without i of w(|S|) (v(S + i) - v(S))."""
    validation.check_int(n, "n", minimum=1, maximum=MAX_ENUMERATED_PLAYERS)
    v = validation.as_float_array(v, "v").astype(np.float64)
    if v.shape != (2**n,):
        raise ValueError(f"expected {2**n} coalition values for {n} players, got {v.shape}")
    validation.check_finite(v, "v")
    s = np.arange(2**n)
    bits = (s[:, None] >> np.arange(n)) & 1  # [2^n, n]
    sizes = bits.sum(axis=1)
    w = shapley_weights(n)[np.minimum(sizes, n - 1)]  # [2^n]
    with_i = s[:, None] | (1 << np.arange(n))  # [2^n, n]
    marginal = v[with_i] - v[:, None]  # [2^n, n], zero where i is already in S
    return ((bits == 0) * w[:, None] * marginal).sum(axis=0)


def banzhaf_from_values(v: np.ndarray, n: int) -> np.ndarray:
    """Exact Banzhaf values `[n]` from the values `v [2^n]` of all coalitions (indexed as in
    `all_coalitions`): beta_i = 2^-(n-1) sum over S without i of (v(S + i) - v(S)), the mean
    marginal contribution when every other player is present with probability 1/2. Unlike
    Shapley values they need not add up to v(all) - v(none)."""
    validation.check_int(n, "n", minimum=1, maximum=MAX_ENUMERATED_PLAYERS)
    v = validation.as_float_array(v, "v").astype(np.float64)
    if v.shape != (2**n,):
        raise ValueError(f"expected {2**n} coalition values for {n} players, got {v.shape}")
    validation.check_finite(v, "v")
    s = np.arange(2**n)
    without = ((s[:, None] >> np.arange(n)) & 1) == 0  # [2^n, n]: i not in S
    marginal = v[s[:, None] | (1 << np.arange(n))] - v[:, None]  # [2^n, n]
    return (without * marginal).sum(axis=0) / 2 ** (n - 1)


def _exact(from_values, game: Game, max_players: int) -> ShapleyResult:
    """Values `from_values(v, n)` of the game from all of its 2^n coalitions."""
    n = game.n
    validation.check_int(max_players, "max_players", minimum=1, maximum=MAX_ENUMERATED_PLAYERS)
    if n > max_players:
        raise ValueError(
            f"x has {n} residues (players): exact enumeration needs 2^{n} = {2**n} coalitions x "
            f"{game.size} references = {2**n * game.size} model calls. Use shapley_permutation "
            f"or kernel_shap for peptides this long (or raise max_players={max_players} knowingly)"
        )
    v = np.concatenate([[game.empty], game(all_coalitions(n)[1:-1]), [game.full]])
    return _result(game, from_values(v, n), None, len(v))


def banzhaf_exact(f: PredictFn, x, *, max_players: int = MAX_EXACT_PLAYERS, **game_args) -> ShapleyResult:
    """Exact Banzhaf values `[n]` of the residues of `x [L, A]`, from all 2^n coalitions of
    the same game as `shapley_exact` (`game_args`: `background`, `baseline`, `length`, as
    there and in `perturbation.make_game`). `gap` is their efficiency gap
    `sum - (f(x) - v(none))`, which is not zero in general: the Banzhaf value weights every
    coalition equally instead of every coalition size."""
    return _exact(banzhaf_from_values, make_game(f, x, **game_args), max_players)


def shapley_exact(
    f: PredictFn,
    x,
    *,
    background=None,
    baseline=None,
    length: int | None = None,
    max_players: int = MAX_EXACT_PLAYERS,
) -> ShapleyResult:
    """Exact Shapley values `[n]` of the residues of `x [L, A]` by evaluating all 2^n
    coalitions in batched model calls (each costs M = number of references forward passes).
    `background [M, L, A]` or `baseline` and `length` as in `perturbation.make_game`."""
    game = make_game(f, x, background=background, baseline=baseline, length=length)
    return _exact(shapley_from_values, game, max_players)


def shapley_permutation(
    f: PredictFn,
    x,
    key: jax.Array,
    *,
    n_permutations: int = 64,
    background=None,
    baseline=None,
    length: int | None = None,
) -> ShapleyResult:
    """Shapley values `[n]` by permutation sampling with antithetic pairs.

    `n_permutations / 2` random orders of the residues and their reverses; along each order,
    a residue's contribution is v(predecessors + it) - v(predecessors). The estimate is the
    mean over the pairs, whose means are independent, so the standard error is their
    standard deviation / sqrt(pairs). Efficiency holds exactly for every order (the
    contributions telescope), so the gap only measures rounding. Cost:
    n_permutations x (n - 1) + 2 coalitions, each M model calls.
    """
    check_key(key)
    if not isinstance(n_permutations, (int, np.integer)) or n_permutations < 4 or n_permutations % 2:
        raise ValueError(
            f"n_permutations must be an even integer >= 4 (at least two antithetic pairs, so "
            f"that a standard error exists), got {n_permutations!r}"
        )
    game = make_game(f, x, background=background, baseline=baseline, length=length)
    n = game.n
    pairs = n_permutations // 2
    keys = jax.random.split(key, pairs)
    forward = np.asarray(jax.vmap(lambda k: jax.random.permutation(k, n))(keys))  # [P/2, n]
    orders = np.concatenate([forward, forward[:, ::-1]])  # [P, n]: pair p is rows p, p + P/2
    rank = np.argsort(orders, axis=1)  # rank[p, j]: where player j comes in order p
    # prefixes of k = 1 .. n-1 players: masks [P, n-1, n]
    masks = rank[:, None, :] < np.arange(1, n)[None, :, None]
    inner = game(masks.reshape(-1, n)).reshape(len(orders), n - 1) if n > 1 else np.zeros((len(orders), 0))
    v = np.concatenate(
        [np.full((len(orders), 1), game.empty), inner, np.full((len(orders), 1), game.full)], axis=1
    )  # [P, n + 1]: v after 0 .. n players
    contrib = np.take_along_axis(v, rank + 1, axis=1) - np.take_along_axis(v, rank, axis=1)  # [P, n]
    pair_means = 0.5 * (contrib[:pairs] + contrib[pairs:])
    values = pair_means.mean(axis=0)
    stderr = pair_means.std(axis=0, ddof=1) / np.sqrt(pairs)
    return _result(game, values, stderr, len(orders) * (n - 1) + 2)


def kernel_shap(
    f: PredictFn,
    x,
    key: jax.Array,
    *,
    n_samples: int = 2048,
    background=None,
    baseline=None,
    length: int | None = None,
) -> ShapleyResult:
    """Shapley values `[n]` by KernelSHAP: the weighted least-squares fit of
    v(S) ~ v(none) + sum_{i in S} phi_i with the Shapley kernel weights and the efficiency
    constraint sum(phi) = f(x) - v(none) imposed exactly (by eliminating one player).

    As in SHAP: coalition sizes k and n - k are paired; a size whose subsets all fit in
    the remaining budget is enumerated with its exact kernel weight; the remaining budget
    is sampled (size from the kernel's size distribution, then a uniform subset and its
    complement), and the left-over weight is shared equally among the samples. Duplicate
    coalitions are evaluated once. `n_samples` coalitions at most (besides all and none);
    with n_samples >= 2^n - 2 every coalition is enumerated and the result is exact.
    No standard error is reported (the sampled rows are not independent pairs).
    """
    check_key(key)
    game = make_game(f, x, background=background, baseline=baseline, length=length)
    n = game.n
    if not isinstance(n_samples, (int, np.integer)) or n_samples < n + 1:
        raise ValueError(
            f"n_samples must be an integer of at least n + 1 = {n + 1} coalitions for {n} residues, "
            f"got {n_samples!r} (SHAP's default is 2 n + 2048)"
        )
    if n_samples > MAX_KERNEL_SAMPLES:
        raise ValueError(f"n_samples = {n_samples:,} coalitions would need gigabytes of masks; "
                         f"use at most {MAX_KERNEL_SAMPLES:,} (exact Shapley values: shapley_exact)")
    delta = game.full - game.empty
    if n == 1:
        return _result(game, np.array([delta]), None, 2)
    masks, weights = kernel_coalitions(n, n_samples, key)
    unique, inverse = np.unique(masks, axis=0, return_inverse=True)
    v = game(unique)[inverse.reshape(-1)]
    values = solve_kernel(masks, weights, v, game.empty, game.full)
    return _result(game, values, None, len(unique) + 2)


def solve_kernel(masks, weights, values, empty: float, full: float) -> np.ndarray:
    """KernelSHAP's fit `[n]`: the weighted least-squares solution of
    `values ~ empty + masks @ phi` (weights `[C]`, masks `[C, n]` bool) subject to
    `sum(phi) = full - empty`, imposed exactly by eliminating the last player
    (phi_n = full - empty - sum of the others) and solving the unconstrained rest."""
    z = validation.as_float_array(masks, "masks").astype(np.float64)
    w = validation.as_float_array(weights, "weights").astype(np.float64)
    v = validation.as_float_array(values, "values").astype(np.float64)
    if z.ndim != 2 or w.shape != (len(z),) or v.shape != (len(z),) or z.shape[0] == 0 or z.shape[1] == 0:
        raise ValueError(f"masks [C >= 1, n >= 1], weights [C] and values [C] must agree; got {z.shape}, {w.shape}, {v.shape}")
    validation.check_finite(v, "values")
    validation.check_finite(w, "weights")
    if (w < 0).any():
        raise ValueError("weights must be >= 0 (they are least-squares weights)")
    empty = validation.check_number(empty, "empty")
    full = validation.check_number(full, "full")
    delta = full - empty
    target = v - empty - z[:, -1] * delta
    design = z[:, :-1] - z[:, -1:]
    sw = np.sqrt(w)[:, None]
    sol, *_ = np.linalg.lstsq(design * sw, target * sw[:, 0], rcond=None)
    return np.append(sol, delta - sol.sum())


def kernel_coalitions(n: int, budget: int, key: jax.Array) -> tuple[np.ndarray, np.ndarray]:
    """Coalitions `[C, n]` and their kernel weights `[C]` (summing to 1), as SHAP builds them
    for a budget of `budget` coalitions (see `kernel_shap`)."""
    validation.check_int(n, "n", minimum=2)
    validation.check_int(budget, "budget", minimum=1, maximum=MAX_KERNEL_SAMPLES)
    validation.check_key(key)
    sizes = np.arange(1, n)
    size_weight = (n - 1) / (sizes * (n - sizes))  # total kernel weight of all subsets of each size
    size_weight = size_weight / size_weight.sum()
    n_sizes = (n - 1 + 1) // 2  # sizes 1 .. ceil((n-1)/2); size k stands for k and n - k
    n_paired = (n - 1) // 2
    pair_weight = np.array([size_weight[k - 1] + (size_weight[n - k - 1] if k <= n_paired else 0.0)
                            for k in range(1, n_sizes + 1)])
    masks, weights = [], []
    remaining = float(budget)
    full_sizes = 0
    for k in range(1, n_sizes + 1):
        count = math.comb(n, k) * (2 if k <= n_paired else 1)
        share = pair_weight[k - 1] / pair_weight[k - 1 :].sum()  # of the weight not yet enumerated
        if remaining * share + 1e-8 < count:
            break
        subsets = [np.isin(np.arange(n), c) for c in itertools.combinations(range(n), k)]
        w = pair_weight[k - 1] / count
        for s in subsets:
            masks.append(s)
            weights.append(w)
            if k <= n_paired:
                masks.append(~s)
                weights.append(w)
        remaining -= count
        full_sizes = k
    fixed_weight = sum(weights)
    n_rest = int(remaining)
    if full_sizes < n_sizes and n_rest >= 2:
        probs = pair_weight[full_sizes:] / pair_weight[full_sizes:].sum()
        draws = n_rest // 2
        k_size, k_sub = jax.random.split(key)
        ks = np.asarray(jax.random.choice(k_size, np.arange(full_sizes + 1, n_sizes + 1), (draws,), p=jnp.asarray(probs)))
        ranks = np.argsort(np.asarray(jax.random.uniform(k_sub, (draws, n))), axis=1)
        sampled = ranks < ks[:, None]
        rest_weight = (1.0 - fixed_weight) / (2 * draws)
        for s in sampled:
            masks += [s, ~s]
            weights += [rest_weight, rest_weight]
    return np.array(masks, dtype=bool), np.array(weights, dtype=np.float64)
