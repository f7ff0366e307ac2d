"""Exercise checks of chapter 7, Shapley values: exact and by permutations (convention: `_common`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from helpers import shapley
from helpers.course.checks._common import CheckFailed, _run


def check_shapley(student: Callable) -> str:
    """`student(v, n) -> phi [n]`, where `v(masks [C, n] bool) -> values [C]` is a
    coalition game of n players. Cases: an additive game (each player's value is its own
    term), a game where two players only count together (they split it, the others get
    0), and a random game of 6 players against brute force (`shapley.shapley_from_values`)."""
    rng = np.random.default_rng(0)
    terms = rng.normal(size=5)
    additive = (lambda m: np.asarray(m, float) @ terms, 5, terms, "an additive game v(S) = sum of the terms in S")
    both = (lambda m: (np.asarray(m)[:, 0] & np.asarray(m)[:, 2]).astype(float), 4, np.array([0.5, 0.0, 0.5, 0.0]),
            "a game worth 1 when players 1 and 3 are both present")
    table = rng.normal(size=2**6)
    bits = 1 << np.arange(6)
    random = (lambda m: table[np.asarray(m, int) @ bits], 6, shapley.shapley_from_values(table, 6), "a random game of 6 players")
    for v, n, expected, name in (additive, both, random):
        phi = _run(student, v, n, what="your Shapley values")
        if phi.shape != (n,):
            raise CheckFailed(f"for {name} you returned shape {phi.shape}; expected one value per player, ({n},)")
        full, empty = float(v(np.ones((1, n), bool))[0]), float(v(np.zeros((1, n), bool))[0])
        gap = float(phi.sum()) - (full - empty)
        if abs(gap) > 1e-6:
            raise CheckFailed(f"your values break efficiency on {name}: they sum to {phi.sum():.4f}, "
                              f"but v(all) - v(none) = {full - empty:.4f} (gap {gap:.3g})")
        i = int(np.argmax(np.abs(phi - expected)))
        if abs(phi[i] - expected[i]) > 1e-6:
            raise CheckFailed(f"on {name}, player {i + 1} should get {expected[i]:.4f}, yours gets {phi[i]:.4f}; "
                              "check the weights |S|! (n - |S| - 1)! / n!")
    return "Shapley values: all 3 games pass (efficiency and exact values)"


def check_permutation_shapley(student: Callable) -> str:
    """`student(v, n, rng, n_permutations) -> phi [n]`, Shapley values estimated from random
    orders of the players (`rng` a `numpy.random.Generator`). Cases: efficiency must hold
    exactly for any sample; an additive game is exact for any order; the two-player game
    and a random game of 6 players against the exact values within sampling error."""
    rng = np.random.default_rng(0)
    terms = rng.normal(size=5)
    table = rng.normal(size=2**6)
    bits = 1 << np.arange(6)
    games = [(lambda m: np.asarray(m, float) @ terms, 5, terms, 0.0, "an additive game"),
             (lambda m: (np.asarray(m)[:, 0] & np.asarray(m)[:, 2]).astype(float), 4, np.array([0.5, 0.0, 0.5, 0.0]),
              0.08, "a game worth 1 when players 1 and 3 are both present"),
             (lambda m: table[np.asarray(m, int) @ bits], 6, shapley.shapley_from_values(table, 6), 0.15, "a random game of 6 players")]
    for v, n, exact, tol, name in games:
        phi = _run(student, v, n, np.random.default_rng(1), 2000, what="your permutation Shapley values")
        if phi.shape != (n,):
            raise CheckFailed(f"for {name} you returned shape {phi.shape}; expected one value per player, ({n},)")
        full, empty = float(v(np.ones((1, n), bool))[0]), float(v(np.zeros((1, n), bool))[0])
        if abs(phi.sum() - (full - empty)) > 1e-6:
            raise CheckFailed(f"on {name} your estimates sum to {phi.sum():.4f}, not v(all) - v(none) = {full - empty:.4f}: "
                              "along one order the marginal contributions add up exactly, so any average of whole orders does too")
        i = int(np.argmax(np.abs(phi - exact)))
        if abs(phi[i] - exact[i]) > tol + 1e-9:
            raise CheckFailed(f"on {name} with 2000 orders, player {i + 1} gets {phi[i]:.3f}; the exact value is {exact[i]:.3f}, "
                              f"further than sampling explains (tolerance {tol}): each order must be uniformly random, "
                              "and each player credited with v(its predecessors and it) - v(its predecessors)")
    return "permutation Shapley values: all 3 games pass (efficiency exact, values within sampling error)"
