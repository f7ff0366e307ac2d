"""One exercise check in a fresh Python process: what grading runs for every test.

    python -m helpers.course.sandbox   (reads one JSON request on stdin, writes one result line)

The request is `{"check": "check_auroc", "function": "my_auroc", "source": <the answer cell>,
"seed": null | int, "nonce": <str>}`. The process imports the course's code cleanly, keeps of
the answer cell only its imports and its function and class definitions (`filter_source`:
top-level statements that patch things never run here), refuses sources that reach into the
interpreter (`lint`: frames, closures, `__code__`, `getattr`, `sys`, `os`, `inspect`, ...),
runs the check with `seed` on the function, and writes `<nonce> {"passed": bool, "message":
str}` to a private copy of its standard output (the student's prints go to stderr). The
caller (`helpers.course.grading.run_check`) enforces the time limit by killing the process.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import sys

# What an answer may not touch: ways into the interpreter, the grader, or the process.
BANNED_MODULES = frozenset({
    "sys", "os", "inspect", "gc", "ctypes", "importlib", "builtins", "signal", "subprocess", "threading",
    "multiprocessing", "types", "runpy", "pickle", "marshal", "io", "pathlib", "shutil", "socket", "code",
    "codeop", "traceback", "atexit", "faulthandler", "resource", "dis", "linecache", "_thread", "pdb",
    "operator", "weakref", "copyreg", "tempfile", "glob", "posix", "pty", "asyncio", "concurrent", "dill",
    "cloudpickle", "otter", "IPython", "ipykernel", "sysconfig", "site", "zipimport", "pkgutil", "tracemalloc",
    "unittest", "pytest", "ast",
})
BANNED_COURSE = ("helpers.course", "helpers.checks")
BANNED_NAMES = frozenset({
    "eval", "exec", "compile", "__import__", "globals", "locals", "vars", "getattr", "setattr", "delattr",
    "open", "exit", "quit", "breakpoint", "input", "help", "SystemExit", "KeyboardInterrupt", "BaseException",
    "memoryview", "attrgetter", "methodcaller",
})


def _literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def filter_source(source: str) -> str:
    """The answer cell as graded: only its imports and its top-level function and class
    definitions (normalised by `ast.unparse`, so layout and comments do not matter); a class
    body keeps its methods and constant assignments only (other statements run at definition)."""
    tree = ast.parse(source)
    keep = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    tree.body = [node for node in tree.body if isinstance(node, keep)]
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            node.body = [b for b in node.body if isinstance(b, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Pass))
                         or (isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant))
                         or (isinstance(b, (ast.Assign, ast.AnnAssign)) and b.value is not None and _literal(b.value))
                         ] or [ast.Pass()]
    return ast.unparse(tree)


def lint(source: str) -> list[str]:
    """What in `source` grading does not allow (empty when nothing): banned modules (see
    `BANNED_MODULES`, the grader itself), banned names (`BANNED_NAMES`, dunder names) and
    attributes that start with an underscore (`f.__code__`, `m.__closure__`, `mv._a`) or reach
    frames (`f_back`, `f_locals`, `tb_frame`, `cell_contents`, `ctypeslib`)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        mods = []
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mods = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            if node.level:
                found.append("a relative import")
        for m in mods:
            if m.split(".")[0] in BANNED_MODULES or m.startswith(BANNED_COURSE):
                found.append(f"the module `{m}`")
        if isinstance(node, ast.Name) and (node.id in BANNED_NAMES or node.id.startswith("__")):
            found.append(f"the name `{node.id}`")
        if isinstance(node, ast.alias) and (node.name in BANNED_NAMES or node.name.startswith("_")):
            found.append(f"the name `{node.name}`")
        if isinstance(node, ast.Attribute) and (
                node.attr.startswith("_") or node.attr in BANNED_NAMES or node.attr.startswith(("f_", "tb_", "gi_", "cr_", "co_")) or node.attr in ("cell_contents", "ctypeslib", "ctypes", "modules", "environ")):
            found.append(f"the attribute `.{node.attr}`")
    return sorted(set(found))


def source_seed(source: str, salt: str) -> int:
    """The hidden cases' seed of one answer: from the graded source (`filter_source`) and the
    grading secret `salt`, which the answer never sees (only the seed reaches this process)."""
    text = filter_source(source)
    return int.from_bytes(hashlib.sha256(f"{salt}\n{text}".encode()).digest()[:4], "little")


def _check_imports(path: str) -> list[str]:
    """The modules a check's file imports (also inside its functions): imported before the
    answer runs, so the snapshot covers the references the check compares against."""
    import importlib

    names = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    out = []
    for name in sorted(names):
        try:
            importlib.import_module(name)
        except ImportError:
            continue  # an attribute, not a module (`from sklearn.metrics import auc`)
        out.append(name)
    return out


def _snapshot(extra: list[str]) -> dict:
    """Every attribute of the course's modules, the builtins and NumPy/JAX's top-level
    namespaces, by identity: compared after the check (callables only: a module's cache may
    fill), a submission that replaced the reference (or `abs`) while the check ran fails."""
    import builtins

    names = [m for m in list(sys.modules) if m.startswith("helpers") or m in ("numpy", "numpy.linalg", "jax",
                                                                             "jax.numpy", "jax.numpy.linalg", "math")]
    names += [m for m in extra if m not in names]
    snap = {"builtins": dict(vars(builtins))}
    for m in names:
        mod = sys.modules.get(m)
        if mod is not None:
            snap[m] = dict(vars(mod))
    return snap


def _changed(snap: dict) -> list[str]:
    import builtins

    out = []
    for m, attrs in snap.items():
        now = vars(builtins) if m == "builtins" else vars(sys.modules[m])
        out += [f"{m}.{k}" for k, v in attrs.items() if callable(v) and now.get(k, None) is not v]
    return out


def grade(request: dict) -> dict:
    """Run one check as the request says (see the module's docstring); returns the result."""
    import importlib

    from helpers.course.checks import CHECKS
    from helpers.course.checks._common import CheckFailed

    name, function, source = request["check"], request["function"], request["source"]
    if name not in CHECKS:
        return {"passed": False, "message": f"unknown check {name!r}"}
    try:
        graded = filter_source(source)
    except SyntaxError as e:
        return {"passed": False, "message": f"{name}: your cell does not parse: {e}"}
    bad = lint(graded)
    if bad:
        return {"passed": False, "message": f"{name}: grading runs your functions alone; they may not use "
                                            f"{', '.join(bad)}"}
    module = importlib.import_module(CHECKS[name])
    check = getattr(module, name)
    import jax
    import jax.numpy as jnp
    import numpy as np

    namespace = {"np": np, "jnp": jnp, "jax": jax, "__name__": "__answer__"}
    extra = _check_imports(module.__file__)
    snap = _snapshot(extra)
    try:
        exec(compile(graded, "<answer cell>", "exec"), namespace)
    except Exception as e:
        return {"passed": False, "message": f"{name}: your cell raised {type(e).__name__}: {e}"}
    snap.update(_snapshot([m for m in sys.modules if m not in snap and (m.startswith("helpers") or m in extra)]))
    student = namespace.get(function)
    if not callable(student):
        return {"passed": False, "message": f"{name}: your cell does not define the function `{function}`"}
    try:
        message, passed = check(student, seed=request.get("seed")), True
    except CheckFailed as e:
        message, passed = str(e), False
    except Exception as e:  # the student's code crashed: its own error, as a failed test
        message, passed = f"{name}: your code raised {type(e).__name__}: {e}", False
    changed = _changed(snap)
    if changed:
        return {"passed": False, "message": f"{name}: your code changed {', '.join(changed[:3])}: grading needs them unchanged"}
    return {"passed": passed, "message": message}


def main() -> None:
    request = json.loads(sys.stdin.read())
    nonce = str(request.pop("nonce", ""))
    out = os.fdopen(os.dup(1), "w")  # the result's channel; the student's prints go to stderr
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        result = grade(request)
    except BaseException as e:  # noqa: BLE001  (SystemExit, KeyboardInterrupt from the student's code too)
        result = {"passed": False, "message": f"{request.get('check')}: grading stopped: {type(e).__name__}: {e}"}
    out.write(f"{nonce} {json.dumps(result)}\n")
    out.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
