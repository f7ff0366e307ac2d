"""Exercise checks of chapter 7, Shapley values: exact and by permutations (convention:
`_common`; the student's function runs on every case before any expected value is computed)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from helpers import shapley
from helpers.course.checks._common import CheckFailed, _collect, _hint, _rng

_FORBIDDEN = (shapley.shapley_from_values, shapley.banzhaf_from_values, shapley.shapley_exact,
              shapley.shapley_permutation, shapley.kernel_shap, shapley.shapley_weights)


def _games(seed: int | None) -> list[tuple[Callable, int, str]]:
    """An additive game, a game where two players only count together, a random game of
    6 players (for a grading seed: other terms, another pair, another table)."""
    rng = _rng(seed)
    terms = rng.normal(size=5)
    i, j = (0, 2) if seed is None else tuple(int(v) for v in rng.choice(4, 2, replace=False))
    table = rng.normal(size=2**6)
    bits = 1 << np.arange(6)
    pair = "players 1 and 3" if seed is None else "two of the players"
    return [(lambda m: np.asarray(m, float) @ terms, 5, "an additive game v(S) = sum of the terms in S"),
            (lambda m: (np.asarray(m)[:, i] & np.asarray(m)[:, j]).astype(float), 4, f"a game worth 1 when {pair} are both present"),
            (lambda m: table[np.asarray(m, int) @ bits], 6, "a random game of 6 players")]


def _counted(v: Callable) -> tuple[Callable, dict]:
    """`v` counting its calls and the coalitions it evaluated: `{"calls": c, "rows": r}`."""
    count = {"calls": 0, "rows": 0}

    def game(masks):
        count["calls"] += 1
        count["rows"] += int(np.shape(masks)[0]) if np.ndim(masks) == 2 else 1
        return v(masks)

    return game, count


def _budget(count: dict, rows: int, name: str, what: str) -> None:
    """The exercise asks for one call of the game on `rows` coalitions (two calls allowed)."""
    if count["calls"] > 2 or count["rows"] > rows:
        raise CheckFailed(f"on {name} you called the game {count['calls']} times on {count['rows']} coalitions in all; "
                          f"the exercise asks for {what} in one call ({rows} coalitions)")


def _exact(v: Callable, n: int) -> np.ndarray:
    masks = shapley.all_coalitions(n)
    table = np.zeros(2**n)
    table[masks.astype(int) @ (1 << np.arange(n))] = np.asarray(v(masks), float)
    return shapley.shapley_from_values(table, n)


def _efficiency(v: Callable, n: int, phi: np.ndarray, name: str, extra: str) -> None:
    full, empty = float(v(np.ones((1, n), bool))[0]), float(v(np.zeros((1, n), bool))[0])
    gap = float(phi.sum()) - (full - empty)
    if abs(gap) > 1e-5 * max(1.0, abs(full - empty)):  # what a float32 (jnp) sum can do
        raise CheckFailed(f"your values break efficiency on {name}: their sum misses v(all) - v(none) by {abs(gap):.3g}{extra}")


def check_shapley(student: Callable, *, seed: int | None = None) -> str:
    """`student(v, n) -> phi [n]`, where `v(masks [C, n] bool) -> values [C]` is a
    coalition game of n players. Cases: an additive game (each player's value is its own
    term), a game where two players only count together (they split it, the others get
    0), and a random game of 6 players against brute force (`shapley.shapley_from_values`,
    off limits while yours runs with the rest of `helpers.shapley`)."""
    games = _games(seed)
    counted = [_counted(v) for v, _, _ in games]
    outs = _collect(student, [(c[0], n) for c, (_, n, _) in zip(counted, games, strict=True)],
                    what="your Shapley values", forbidden=_FORBIDDEN)
    for (v, n, name), phi, (_, count) in zip(games, outs, counted, strict=True):
        if phi.shape != (n,):
            raise CheckFailed(f"for {name} you returned shape {phi.shape}; expected one value per player, ({n},)")
        want = _exact(v, n)
        hint = _hint(phi, want, items="players")
        if hint and "wrong players" in hint:
            raise CheckFailed(f"on {name} your values are the right ones on the wrong players: column i of the masks "
                              "is player i (check the order of the players)")
        _efficiency(v, n, phi, name, hint)
        err = np.abs(phi - want)
        if err.max() > 1e-5 * max(1.0, float(np.abs(want).max())):  # float32 (jnp) answers pass
            raise CheckFailed(f"on {name}, player {int(err.argmax()) + 1}'s value is off by {err.max():.3g}"
                              f"{hint or '; check the weights |S|! (n - |S| - 1)! / n!'}")
    for (_, n, name), (_, count) in zip(games, counted, strict=True):  # the budget once the values are right
        _budget(count, 2**n, name, f"all 2^{n} coalitions")
    return "Shapley values: all 3 games pass (efficiency and exact values)"


def check_permutation_shapley(student: Callable, *, seed: int | None = None) -> str:
    """`student(v, n, rng, n_permutations) -> phi [n]`, Shapley values estimated from random
    orders of the players (`rng` a `numpy.random.Generator`). Cases: efficiency must hold
    exactly for any sample; an additive game is exact for any order; the two-player game
    and a random game of 6 players against the exact values within sampling error."""
    games = _games(seed)
    tols = (0.0, 0.08, 0.15)
    r = 1 if seed is None else int(_rng(seed, 3).integers(1, 2**20))
    counted = [_counted(v) for v, _, _ in games]
    outs = _collect(student, [(c[0], n, np.random.default_rng(r), 2000) for c, (_, n, _) in zip(counted, games, strict=True)],
                    what="your permutation Shapley values", forbidden=_FORBIDDEN)
    for (v, n, name), phi, tol, (_, count) in zip(games, outs, tols, counted, strict=True):
        if phi.shape != (n,):
            raise CheckFailed(f"for {name} you returned shape {phi.shape}; expected one value per player, ({n},)")
        _efficiency(v, n, phi, name, ": along one order the marginal contributions add up exactly, so any "
                    "average of whole orders does too")
        want = _exact(v, n)
        err = np.abs(phi - want)
        if err.max() > tol + 1e-5 * max(1.0, float(np.abs(want).max())):  # round-off of a float32 (jnp) average
            raise CheckFailed(f"on {name} with 2000 orders, player {int(err.argmax()) + 1}'s estimate is off by "
                              f"{err.max():.3f}, further than sampling explains (tolerance {tol}): each order must be "
                              "uniformly random, and each player credited with v(its predecessors and it) - v(its predecessors)")
    for (_, n, name), (_, count) in zip(games, counted, strict=True):  # the budget once the values are right
        _budget(count, 2000 * (n + 1), name, "every prefix of every order")
    return "permutation Shapley values: all 3 games pass (efficiency exact, values within sampling error)"
