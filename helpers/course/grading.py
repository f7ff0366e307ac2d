"""What the Otter tests call: each check runs in a fresh Python process
(`helpers.course.sandbox`) that gets only the answer cell's source, never the student's kernel.

The test cell loads this file afresh (`runpy.run_path`, so a submission that replaced
`helpers.course.grading.run_check` in its kernel changes nothing) and calls
`run_check(check, my_function, hidden=..., limit_s=...)`. `run_check` finds the source of the
cell that defined the function, sends it to the sandbox with the seed of the cases (the book's
for the public test; for the hidden test a seed drawn from the graded source and the secret in
the environment variable `COURSE_GRADING_SALT`: `python -m helpers.course.grade` gives Otter's
kernel a throwaway one, as Otter's result is not counted, and the grading secret is never
written into the autograder zip), and kills the process at the time limit. The sandbox gets
the seed, not the secret.

A failing check raises `AssertionError` with the check's sentence: Otter records the test as
failed and shows the sentence; in the student's copy `grader.check("...")` displays it
without stopping Run All.

The test cell runs in the student's kernel, after the student's own cells, which can replace
what this file imports (`subprocess`, `secrets`, `linecache`) and so forge a pass. The gradebook
does not rely on it: `python -m helpers.course.grade` reads each test back (`parse_test_cell`)
and each answer cell from the submitted file, and calls `isolated_check` itself."""

from __future__ import annotations

import ast
import json
import linecache
import os
import re
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from helpers.course.sandbox import source_seed

ROOT = Path(__file__).resolve().parents[2]
SALT_ENV = "COURSE_GRADING_SALT"


def cell_source(student: Callable) -> str:
    """The source of the cell (or file) that defined `student`: IPython keeps each executed
    cell in `linecache` under the name its code objects carry."""
    code = getattr(student, "__code__", None)
    if code is None:
        raise AssertionError(f"the function to check is not a Python function (got {type(student).__name__})")
    lines = linecache.getlines(code.co_filename)
    if not lines:
        raise AssertionError("the source of the function to check is not available: define it in the answer cell")
    return "".join(lines)


UNREADABLE = (SyntaxError, ValueError, MemoryError, RecursionError)  # what `ast` raises on a hostile cell's text


def names(source: str, name: str) -> bool:
    """Whether the code of `source` uses the name `name` (an answer that may call an earlier
    exercise's function); comments and strings do not count. A source that does not parse:
    whether it mentions `name` as a whole word."""
    try:
        tree = ast.parse(source)
    except UNREADABLE:
        return re.search(rf"\b{re.escape(name)}\b", source) is not None
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(tree))


def with_earlier(source: str, earlier: list[str]) -> str:
    """The source graded for an answer: the cells of the earlier exercises' functions it calls
    (`earlier`, only those the answer names: another cell's mistakes stay its own), each once
    and not the answer's own cell, first, then the answer cell."""
    cells = []
    for text in earlier:
        if text not in cells and text != source:
            cells.append(text)
    return "\n\n".join([*cells, source])


def isolated_check(name: str, function: str, source: str, *, seed: int | None = None, limit_s: int = 120) -> dict:
    """Run the check `name` on the function `function` defined by `source` in a fresh
    process (see `helpers.course.sandbox`); returns `{"passed": bool, "message": str}`. The
    process is killed after `limit_s` seconds."""
    if not isinstance(limit_s, int) or limit_s <= 0:
        raise ValueError(f"limit_s: expected a positive number of seconds, got {limit_s!r}")
    if not isinstance(source, str):
        raise TypeError(f"source: expected the answer cell's text, got {type(source).__name__}")
    nonce = secrets.token_hex(16)
    request = json.dumps({"check": name, "function": function, "source": source, "seed": seed, "nonce": nonce})
    env = {k: v for k, v in os.environ.items() if k != SALT_ENV}
    boot = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from helpers.course.sandbox import main; main()"
    # an empty working folder: relative paths in the answer name nothing of the course (its code, the
    # grading secret in dist/)
    with tempfile.TemporaryDirectory(prefix="check_") as work:
        try:
            proc = subprocess.run([sys.executable, "-I", "-c", boot], input=request, capture_output=True, text=True,
                                  timeout=limit_s, cwd=work, env=env)
        except subprocess.TimeoutExpired:
            return {"passed": False, "message": f"{name}: stopped after the time limit of {limit_s} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(nonce + " "):
            result = json.loads(line[len(nonce) + 1:])
            return {"passed": result["passed"] is True, "message": str(result["message"])}
    tail = proc.stderr.strip().splitlines()[-3:]
    return {"passed": False, "message": f"{name}: the grading process ended without a result "
                                        f"(exit code {proc.returncode}): {' / '.join(tail)}"}


def run_check(name: str, student: Callable, *, function: str | None = None, hidden: bool = False,
              source: str | None = None, salt: str | None = None, limit_s: int = 120, uses: list | None = None) -> str:
    """Run the check `name` on `student` in a fresh process: the book's cases, or
    (`hidden=True`) the hidden cases seeded by the graded source and the grading secret
    (`salt`, else the environment variable `COURSE_GRADING_SALT`). `source` defaults to the
    cell that defined `student`. Returns the check's summary; raises AssertionError with its
    sentence when it fails or after `limit_s` seconds. `function` is the name the exercise
    asks for (default: `student.__name__`); `uses`: the functions of the chapter's earlier
    exercises (an answer may call them), whose cells are sent first when the answer names them."""
    if not callable(student):
        raise AssertionError(f"{name}: the function to check is not defined yet (got {type(student).__name__})")
    function = function or getattr(student, "__name__", "")
    source = cell_source(student) if source is None else source
    source = with_earlier(source, [cell_source(f) for f in uses or () if callable(f)
                                   and getattr(f, "__code__", None) is not None and names(source, f.__name__)])
    seed = None
    if hidden:
        salt = os.environ.get(SALT_ENV) if salt is None else salt
        if not salt:
            raise AssertionError(f"{name}: hidden cases need the grading secret (grade with python -m helpers.course.grade "
                                 f"--secret-file ..., or set {SALT_ENV})")
        try:
            seed = source_seed(source, salt)
        except SyntaxError as e:
            raise AssertionError(f"{name}: your cell does not parse: {e}") from None
    result = isolated_check(name, function, source, seed=seed, limit_s=limit_s)
    if not result["passed"]:
        raise AssertionError(result["message"])
    return result["message"]


def test_cell(check: str, function: str, *, hidden: bool, limit_s: int, uses: tuple = ()) -> str:
    """The code of an Otter test: loads this file afresh and runs `run_check` (`uses`: the
    names of the chapter's earlier exercise functions). `parse_test_cell` reads it back."""
    uses_arg = f", uses=[globals().get(_n) for _n in {tuple(uses)!r}]" if uses else ""
    return ("import importlib.util as _grading_util, runpy as _grading_runpy\n"
            "_grading = _grading_runpy.run_path(_grading_util.find_spec('helpers.course.grading').origin)\n"
            f"assert _grading['run_check']({check!r}, {function}, function={function!r}, hidden={hidden}, "
            f"limit_s={limit_s}{uses_arg})")


def parse_test_cell(code: str) -> dict:
    """The arguments of a test that `test_cell` wrote (its inverse, for `helpers.course.grade`,
    which runs the same checks itself): `{"check", "function", "hidden", "limit_s", "uses"}`.
    Raises ValueError when `code` is not such a test."""
    def refuse(why: str) -> ValueError:
        return ValueError(f"code: not a test written by helpers.course.grading.test_cell ({why}); "
                          "rebuild the autograder with python -m helpers.course.otter")

    try:
        tree = ast.parse(code)
    except SyntaxError as e:
        raise refuse(f"it does not parse: {e}") from None
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Subscript)
             and isinstance(n.func.slice, ast.Constant) and n.func.slice.value == "run_check"]
    if len(calls) != 1 or len(calls[0].args) != 2:
        raise refuse(f"{len(calls)} calls of run_check, expected one with two positional arguments")
    call, keywords = calls[0], {k.arg: k.value for k in calls[0].keywords}
    try:
        out = {"check": ast.literal_eval(call.args[0]), "function": ast.literal_eval(keywords["function"]),
               "hidden": ast.literal_eval(keywords["hidden"]), "limit_s": ast.literal_eval(keywords["limit_s"]),
               "uses": tuple(ast.literal_eval(keywords["uses"].generators[0].iter)) if "uses" in keywords else ()}
    except (KeyError, IndexError, AttributeError, ValueError, TypeError) as e:
        raise refuse(f"its arguments are not literals: {type(e).__name__}: {e}") from None
    if not (isinstance(out["check"], str) and isinstance(out["function"], str) and isinstance(out["hidden"], bool)
            and isinstance(out["limit_s"], int) and all(isinstance(u, str) for u in out["uses"])):
        raise refuse(f"unexpected argument types: {out!r}")
    return out
