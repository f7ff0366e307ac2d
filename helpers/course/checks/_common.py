"""What every exercise check shares: the failure type and the guarded call of the student's
function (a stub's NotImplementedError becomes "not written yet"; NaN or infinite output fails).

Convention for a check (one module per chapter in this package): `check_<name>(student, *,
seed=None) -> str` runs the student's function on cases whose answer is known and returns a
one-line summary, or raises `CheckFailed` with a sentence naming the property that failed.
`seed=None` gives the fixed cases shown in the book; an integer gives randomised variants of
the same cases (used when grading, so answers cannot be collected from messages)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


class CheckFailed(AssertionError):
    """The student's implementation broke a property the check names."""


def _stub_or(student: Callable, *args, what: str):
    """`student(*args)` as returned (a tuple, an int, an array): a stub that raises
    NotImplementedError fails with "not written yet", NaN or infinite values fail too."""
    try:
        out = student(*args)
    except NotImplementedError as e:
        raise CheckFailed(f"{what} is not written yet ({e})") from None
    parts = out if isinstance(out, tuple) else (out,)
    if not all(np.isfinite(np.asarray(p, dtype=float)).all() for p in parts if not isinstance(p, str)):
        raise CheckFailed(f"{what} returned NaN or infinite values")
    return out


def _run(student: Callable, *args, what: str) -> np.ndarray:
    """`student(*args)` as a float array (see `_stub_or`)."""
    return np.asarray(_stub_or(student, *args, what=what), dtype=float)
