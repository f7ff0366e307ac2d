"""What every exercise check shares: the failure type and the guarded call of the student's
function (a stub's NotImplementedError becomes "not written yet"; NaN or infinite output fails).

Convention for a check (one module per chapter in this package): `check_<name>(student, *,
seed=None) -> str` runs the student's function on cases whose answer is known and returns a
one-line summary, or raises `CheckFailed` with a sentence naming the property that failed.
`seed=None` gives the fixed cases shown in the book; an integer gives randomised variants of
the same cases (used when grading, so answers cannot be collected from messages)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager

import numpy as np


class CheckFailed(AssertionError):
    """The student's implementation broke a property the check names."""


def _handout(value):
    """A copy of `value` for the student's function: NumPy arrays (also inside tuples, lists
    and dicts) are copied, so editing an input in place cannot change the cases the check
    computes its expected values from; JAX arrays are immutable and pass as they are."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_handout(v) for v in value)
    if isinstance(value, list):
        return [_handout(v) for v in value]
    if isinstance(value, dict):
        return {k: _handout(v) for k, v in value.items()}
    return value


_PLAIN = (bool, int, float, str)
_NUMERIC_KINDS = "biuf"


def _jax_array_type():
    import jax.numpy as jnp

    return type(jnp.zeros(()))


def _plain(value, what: str, depth: int = 0):
    """`value` as plain data, converted now: Python numbers, bools, strings and None as they
    are; NumPy scalars and arrays of a numeric dtype and JAX arrays as NumPy copies; tuples,
    lists and dicts of these. Anything else (an object of the student's own class, a subclass
    of a number or an array) raises `CheckFailed`: its conversion could run code later, after
    the forbidden helpers are restored (`float(answer)` calling the course's reference)."""
    kind = type(value)  # the exact type: a subclass could override __float__, __int__, __array__
    if value is None or kind in _PLAIN:
        return value
    if depth > 20:
        raise CheckFailed(f"{what} returned data nested too deeply: return plain numbers or arrays")
    if kind is np.ndarray or (kind in _NUMPY_SCALARS):
        if value.dtype.kind in _NUMERIC_KINDS:
            return np.array(value, copy=True)
        if value.dtype.kind == "U" and kind is np.str_:
            return str(value)
    elif kind is _jax_array_type():
        if np.dtype(value.dtype).kind in _NUMERIC_KINDS:
            return np.array(value, copy=True)
    elif kind is tuple or kind is list:
        return kind(_plain(v, what, depth + 1) for v in value)
    elif kind is dict:
        return {_plain(k, what, depth + 1): _plain(v, what, depth + 1) for k, v in value.items()}
    raise CheckFailed(f"{what} returned a {kind.__name__}: return plain numbers or arrays (Python int, float, "
                      "bool or str, NumPy or JAX arrays of numbers, or tuples, lists and dicts of these)")


_NUMPY_SCALARS = frozenset(t for t in set(np.sctypeDict.values()) if issubclass(t, np.generic))


def _stub_or(student: Callable, *args, what: str):
    """`student(*args)` as plain data (see `_plain`: a tuple, an int, a NumPy array),
    converted at once, in the same window as the call (inside `forbid`): a stub that raises
    NotImplementedError fails with "not written yet", NaN or infinite values fail too. The
    student gets copies of the arrays (see `_handout`), never the check's own."""
    try:
        out = student(*_handout(args))
    except NotImplementedError as e:
        raise CheckFailed(f"{what} is not written yet ({e})") from None
    out = _plain(out, what)
    if out is None:
        raise CheckFailed(f"{what} returned None: the function ends without a `return` of its result")
    parts = out if isinstance(out, tuple) else (out,)
    if not all(np.isfinite(np.asarray(p, dtype=float)).all() for p in parts if not isinstance(p, str)):
        raise CheckFailed(f"{what} returned NaN or infinite values")
    return out


def _run(student: Callable, *args, what: str) -> np.ndarray:
    """`student(*args)` as a float array (see `_stub_or`)."""
    return np.asarray(_stub_or(student, *args, what=what), dtype=float)


PEPTIDES = ("GIGKFLHSAKKFGKAFVGEIMNS", "KWKLFKKIEK", "FLPLIGRVLSGIL")  # magainin 2, a synthetic AMP, temporin A


def _models(seed: int | None = None) -> tuple[Callable, np.ndarray, Callable]:
    """The cases' two models: a linear model `f(x [B, L, A]) -> [B]` with its weights `[A]`
    (a closed form for every method; the hydropathy model for `seed=None`, random weights
    with padding 0 for a grading seed), and the course CNN."""
    import jax
    import jax.numpy as jnp

    from helpers import model as model_lib

    params, _ = model_lib.load_pretrained()
    cnn = model_lib.predict_fn(params)
    if seed is None:
        return model_lib.hydrophobicity_model(), np.asarray(model_lib.hydropathy_weights()), cnn
    w = _rng(seed, 2).normal(0.0, 0.3, 21)
    w[0] = 0.0
    wj = jnp.asarray(w, jnp.float32)
    return jax.jit(lambda xb: jnp.einsum("bla,a->b", xb, wj)), np.asarray(wj, float), cnn


def _where(diff: np.ndarray, seq: str) -> str:
    pos = int(np.unravel_index(np.argmax(np.abs(diff)), diff.shape)[0])
    return f"residue {pos + 1} ({seq[pos] if pos < len(seq) else 'padding'}) of {seq}"


# ---------------------------------------------------------------- grading isolation


class WriteItYourself(RuntimeError):
    """The student's function called a helper the exercise asks them to write themselves."""


_TRIPPED: list[str] = []  # names of forbidden helpers called since the last `forbid` began


def _raiser_code(message: str, nfree: int):
    """A code object that records `message` and raises `WriteItYourself(message)`, with
    `nfree` free variables so that it can replace the code of a closure of that size."""
    names = [f"_free{i}" for i in range(nfree)]
    mod = repr(__name__)
    src = ("def _outer():\n" + "".join(f"    {n} = None\n" for n in names)
           + "    def _forbidden(*args, **kwargs):\n"
           + (f"        ({', '.join(names)},)\n" if names else "")
           + f"        _m = __import__({mod}, fromlist=['_TRIPPED'])\n"
           + f"        _m._TRIPPED.append({message!r})\n"
           + f"        raise _m.WriteItYourself({message!r})\n"
           + "    return _forbidden\n")
    namespace: dict = {}
    exec(compile(src, "<forbidden helper>", "exec"), namespace)
    return namespace["_outer"]().__code__


def _functions(obj) -> list:
    """The plain Python functions behind `obj`: itself and its `__wrapped__` chain."""
    out = []
    while obj is not None and obj not in out:
        if hasattr(obj, "__code__"):
            out.append(obj)
        obj = getattr(obj, "__wrapped__", None)
    return out


def _code_key(code) -> tuple:
    """What makes two functions' code the same wherever it was loaded from: bytecode, constants
    (nested code by its own key: a code object compares with its line numbers), names and
    qualified name; not the file or the lines."""
    consts = tuple(_code_key(c) if isinstance(c, type(code)) else c for c in code.co_consts)
    return code.co_code, consts, code.co_names, code.co_qualname


def _profile_hook(keys: dict, codes: dict | None = None):
    """A `sys.setprofile` hook that raises `WriteItYourself` when a Python function whose
    (source file, qualified name) is in `keys` is entered: copies of a forbidden function
    (`types.FunctionType(f.__code__, ...)`, a second import of its module from the same file)
    run code from that file under that name, so they are caught too; so are copies loaded from
    another spelling of the file's path (the real path is compared) or from another file with
    the same code (`codes`: `_code_key` -> message)."""
    import os

    names = {qualname.rsplit(".", 1)[-1] for _, qualname in keys}
    real = {(os.path.realpath(f), q): m for (f, q), m in keys.items()}
    codes = codes or {}

    def hook(frame, event, arg):
        if event != "call":
            return
        code = frame.f_code
        if code.co_name in names:
            message = keys.get((code.co_filename, code.co_qualname)) \
                or codes.get(_code_key(code)) \
                or real.get((os.path.realpath(code.co_filename), code.co_qualname))
            if message is not None:
                _TRIPPED.append(message)
                raise WriteItYourself(message)

    return hook


@contextmanager
def forbid(*helpers: Callable, exercise: str):
    """While the block runs, calling any of `helpers` (or anything their `__code__` is
    shared with: an alias imported earlier, `functools.wraps` wrappers, or any function whose
    code comes from the same file under the same name) raises `WriteItYourself`; the call is
    recorded even when the student's code catches it.

    The functions' code objects are swapped and restored on exit, so `from helpers.attribution
    import integrated_gradients as ig` made before the block is caught too; a profile hook
    (`sys.setprofile`) catches copies by source file and name."""
    import sys

    saved, keys, codes = [], {}, {}
    try:
        for helper in helpers:
            for fn in _functions(helper):
                name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)}"
                message = f"{exercise}: write it yourself (your code called `{name}`, which the exercise forbids)"
                if "<locals>" not in fn.__code__.co_qualname:  # a closure's code is shared by every closure its
                    # factory makes (JAX's api_boundary wrapper wraps jit, grad, vmap ...): only the swap covers it
                    keys[(fn.__code__.co_filename, fn.__code__.co_qualname)] = message
                    codes[_code_key(fn.__code__)] = message
                saved.append((fn, fn.__code__))
                fn.__code__ = _raiser_code(message, len(fn.__code__.co_freevars))
        del _TRIPPED[:]
        import threading

        previous = sys.getprofile()
        hook = _profile_hook(keys, codes) if keys else previous
        sys.setprofile(hook)
        threading.setprofile(hook)  # threads started while the block runs (a pool running a copy) too
        try:
            yield
        finally:
            sys.setprofile(previous)
            threading.setprofile(None)
    finally:
        for fn, code in reversed(saved):
            fn.__code__ = code
    if _TRIPPED:
        raise CheckFailed(_TRIPPED[0])


def _collect(student: Callable, calls: list[tuple], *, what: str, forbidden: tuple = (), raw: bool = False) -> list:
    """The student's outputs on every case, `calls` a list of argument tuples, all run
    before any expected value is computed, each on copies of its arrays (see `_handout`); `forbidden` helpers raise while they run (see
    `forbid`). Outputs are float arrays (`raw=False`) or as returned (`raw=True`)."""
    outs = []
    with forbid(*forbidden, exercise=what):
        for args in calls:
            try:
                out = _stub_or(student, *args, what=what)
            except WriteItYourself as e:
                raise CheckFailed(str(e)) from None
            outs.append(out if raw else np.asarray(out, dtype=float))
    return outs


def _rng(seed: int | None, salt: int = 0) -> np.random.Generator:
    """The book's generator (`seed=None`: `default_rng(salt)`, today's cases) or a
    grading variant drawn from (seed, salt)."""
    return np.random.default_rng(salt if seed is None else [int(seed), salt, 7919])


def _peptides(seed: int | None) -> tuple[str, ...]:
    """The book's three peptides, or three random ones (lengths 8 to 25) for a grading seed."""
    if seed is None:
        return PEPTIDES
    from helpers import sequences as seqs_lib

    rng = _rng(seed, 1)
    letters = list(seqs_lib.AMINO_ACIDS)
    return tuple("".join(rng.choice(letters, int(n))) for n in rng.integers(8, 26, 3))


def _hint(got, want, *, items: str = "entries") -> str:
    """A sentence (starting with "; ") naming the typical mistake `got` shows against `want`,
    or "" when it is none of them: the sign flipped, a constant multiple (a sum where a mean
    belongs, weights that do not add up to 1), or the right values in the wrong order
    (`items`: what the entries are, e.g. "players")."""
    got, want = np.asarray(got, float), np.asarray(want, float)
    if got.shape != want.shape or not np.isfinite(got).all():
        return ""
    scale = float(np.abs(want).max()) if want.size else 0.0
    if scale < 1e-9:
        return ""
    tol = 1e-3 * scale
    if np.abs(got - want).max() <= tol:
        return ""
    if np.abs(got + want).max() <= tol:
        return "; yours is the right answer with its sign flipped (check which term is subtracted from which)"
    if want.size >= 3:
        c = float(got.ravel() @ want.ravel() / (want.ravel() @ want.ravel()))
        if abs(c - 1.0) > 1e-2 and abs(c) > 1e-6 and np.abs(got - c * want).max() <= tol * max(1.0, abs(c)):
            return (f"; yours is {c:.4g} times the right answer everywhere: a sum where a mean belongs (or a mean "
                    "where a sum belongs), or weights that do not add up to 1")
        if got.ndim == 1 and np.abs(np.sort(got) - np.sort(want)).max() <= tol:
            return f"; yours has the right values on the wrong {items} (check the order of the {items})"
    return ""


def _off(got: np.ndarray, want: np.ndarray) -> float:
    """The largest absolute difference (inf when the shapes differ)."""
    got, want = np.asarray(got, float), np.asarray(want, float)
    return float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
