"""What the Otter tests call while grading a submission, in the submission's own kernel:
the check is loaded fresh from its source file (a student's `checks.check_x = lambda f: "ok"`
changes nothing), the course's modules are checked for monkeypatched functions, the hidden
cases are seeded by the submission, and each check runs under a time limit.

A failing check raises `AssertionError` with the check's sentence: Otter records the test as
failed and shows the sentence; in the student's copy `grader.check("...")` displays it
without stopping Run All."""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import signal
import sys
import sysconfig
import types
from collections.abc import Callable
from pathlib import Path

_CHECKS_DIR = Path(__file__).resolve().parent / "checks"
_HELPERS_DIR = _CHECKS_DIR.parents[1]


def _load(path: Path, name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fresh_check(name: str) -> tuple[Callable, type]:
    """The check `name` (e.g. "check_auroc") and its `CheckFailed`, compiled afresh from `helpers/course/checks/`,
    with a fresh `_common`: whatever the submission did to the imported modules, the grader
    runs the check's own code."""
    if not isinstance(name, str) or not name.startswith("check_"):
        raise ValueError(f"name: expected a check's name like 'check_auroc', got {name!r}")
    files = [p for p in sorted(_CHECKS_DIR.glob("ch*.py")) if f"def {name}(" in p.read_text()]
    if len(files) != 1:
        raise ValueError(f"name: {len(files)} check modules in {_CHECKS_DIR} define {name!r}; expected one")
    key = "helpers.course.checks._common"
    saved = sys.modules.get(key)
    try:
        sys.modules[key] = _load(_CHECKS_DIR / "_common.py", key)
        module = _load(files[0], f"_fresh_{name}")
    finally:
        if saved is not None:
            sys.modules[key] = saved
        else:
            sys.modules.pop(key, None)
    return getattr(module, name), module.CheckFailed


def _library_dirs() -> list[Path]:
    """Where installed libraries and the standard library live."""
    paths = sysconfig.get_paths()
    return [Path(paths[k]).resolve() for k in ("purelib", "platlib", "stdlib", "platstdlib") if k in paths]


def tampered() -> list[str]:
    """Functions of the course's reference modules (`helpers.*` but the checks and the
    course machinery) whose code does not come from the course's files: a sign that the
    submission replaced a reference implementation the checks compare against."""
    bad = []
    for modname, module in list(sys.modules.items()):
        if module is None or not modname.startswith("helpers.") or modname == "helpers.checks" \
                or modname.startswith("helpers.course"):
            continue
        for attr, value in list(vars(module).items()):
            if not isinstance(value, types.FunctionType):
                continue  # not a Python function (compiled ones, e.g. scipy's Cython functions, have a
                # __code__ whose file is a relative .pyx path: they are libraries, not submissions)
            where = Path(value.__code__.co_filename).resolve()
            if not any(where.is_relative_to(d) for d in (_HELPERS_DIR, *_library_dirs())):
                bad.append(f"{modname}.{attr}")  # defined in a notebook cell, a test, a script
    return bad


def submission_seed(student: Callable, salt: str) -> int:
    """A seed for the hidden cases drawn from the submitted function's code and the
    assignment's secret `salt` (in the autograder only): each submission gets its own cases."""
    try:
        text = inspect.getsource(student)
    except (OSError, TypeError):
        code = getattr(student, "__code__", None)
        text = repr((code.co_code, code.co_consts)) if code is not None else repr(student)
    return int.from_bytes(hashlib.sha256(f"{salt}\n{text}".encode()).digest()[:4], "little")


class _Timeout(Exception):
    pass


def run_check(name: str, student: Callable, *, seed: int | None = None, salt: str | None = None,
              limit_s: int = 120) -> str:
    """Run the check `name` on `student` (fresh code, see `fresh_check`) with the book's
    cases (`seed=None`) or, when `salt` is given, the hidden cases of this submission.
    Raises AssertionError with the check's sentence when it fails, when the course's
    modules were modified, or after `limit_s` seconds."""
    if not callable(student):
        raise AssertionError(f"{name}: the function to check is not defined yet (got {type(student).__name__})")
    if not isinstance(limit_s, int) or limit_s <= 0:
        raise ValueError(f"limit_s: expected a positive number of seconds, got {limit_s!r}")
    bad = tampered()
    if bad:
        raise AssertionError(f"the course's code was modified ({', '.join(bad[:3])}): grading needs it unchanged")
    check, failed = fresh_check(name)
    if salt is not None:
        seed = submission_seed(student, salt)

    def alarm(signum, frame):
        raise _Timeout

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(limit_s)
    try:
        return check(student, seed=seed)
    except failed as e:
        raise AssertionError(str(e)) from None
    except _Timeout:
        raise AssertionError(f"{name}: stopped after the time limit of {limit_s} s") from None
    except Exception as e:  # the student's code crashed: its own error, as a failed test
        raise AssertionError(f"{name}: your code raised {type(e).__name__}: {e}") from None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
