"""One exercise check in a fresh Python process: what grading runs for every test.

    python -m helpers.course.sandbox   (reads one JSON request on stdin, writes one result line)

The request is `{"check": "check_auroc", "function": "my_auroc", "source": <the answer cell>,
"seed": null | int, "nonce": <str>}`. The process imports the course's code cleanly, keeps of
the answer cell only its imports and its function and class definitions (`filter_source`:
top-level statements that patch things never run here), refuses sources that reach into the
interpreter (`lint`: frames, closures, `__code__`, `getattr`, `sys`, `os`, `inspect`, ...,
also handed out by an allowed package, and `banned_modules_in` after the cell is defined),
installs an audit hook that refuses frames and signals while the answer's code is on the stack,
and writing, renaming or removing files and starting processes on every thread once the cell
runs (`install_guard`; not a sandbox), runs the check with `seed` on the
function (whose outputs the check converts to plain data at once: `checks._common._plain`), and
writes `<nonce> {"passed": bool, "message": str}` to a private copy of its standard output (the
student's prints go to stderr). The caller (`helpers.course.grading.isolated_check`) enforces the
time limit by killing the process.
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
    "weakref", "copyreg", "tempfile", "glob", "posix", "pty", "asyncio", "concurrent", "dill",
    "cloudpickle", "otter", "IPython", "ipykernel", "sysconfig", "site", "zipimport", "pkgutil", "tracemalloc",
    "unittest", "pytest", "ast", "pydoc", "imp", "sqlite3", "zipfile", "tarfile", "shelve", "dbm", "mmap",
    "greenlet", "psutil", "pyarrow", "array_record", "zmq", "timeit", "doctest", "trace", "profile", "cProfile",
    "logging",
})
BANNED_COURSE = ("helpers.course", "helpers.checks")
# Attributes refused besides `_...`, the banned names and the banned modules' names (`numpy.f2py.os`).
BANNED_ATTRIBUTES = frozenset({"cell_contents", "ctypeslib", "ctypes", "modules", "environ", "course", "checks"})
WHY_MODULE = ("grading runs your function alone, in a process it must not reach into (the interpreter, its frames, "
              "the files, other processes or the grader); remove the import, even when unused")
BANNED_NAMES = frozenset({
    "eval", "exec", "compile", "__import__", "globals", "locals", "vars", "getattr", "setattr", "delattr",
    "open", "exit", "quit", "breakpoint", "help", "SystemExit", "KeyboardInterrupt", "BaseException",
    "memoryview", "attrgetter", "methodcaller", "Formatter", "get_field",
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
    body keeps its methods, constant assignments and field annotations (`pos: object`, as in a
    dataclass) only (other statements run at definition)."""
    tree = ast.parse(source)
    keep = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    tree.body = [node for node in tree.body if isinstance(node, keep)]
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            node.body = [b for b in node.body if isinstance(b, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Pass))
                         or (isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant))
                         or (isinstance(b, (ast.Assign, ast.AnnAssign)) and b.value is not None and _literal(b.value))
                         or (isinstance(b, ast.AnnAssign) and b.value is None and isinstance(b.target, ast.Name)
                             and not any(isinstance(n, ast.Call) for n in ast.walk(b.annotation)))
                         ] or [ast.Pass()]
    return ast.unparse(tree)


def dropped_names(source: str) -> dict[str, str]:
    """The names the answer cell binds in statements `filter_source` drops (top-level
    assignments, class attributes that are not literals): name -> where, for the message of a
    NameError or AttributeError they cause."""
    out = {}
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.For, ast.With)):
            for n in ast.walk(node):
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                    out.setdefault(n.id, "a top-level statement")
        if isinstance(node, ast.ClassDef):
            for b in node.body:
                if isinstance(b, (ast.Assign, ast.AnnAssign)) and b.value is not None and not _literal(b.value):
                    for t in (b.targets if isinstance(b, ast.Assign) else [b.target]):
                        if isinstance(t, ast.Name):
                            out.setdefault(t.id, f"the body of class `{node.name}` (only methods, literal constants "
                                                 "and field annotations are kept)")
    return out


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
            elif any(part.startswith("_") for part in m.split(".")):
                found.append(f"the module `{m}` (a private part: `_...`)")
        if isinstance(node, ast.ImportFrom):  # `from numpy.f2py import os`: an allowed package hands one out
            found += [f"the module `{a.name}` (imported from `{node.module}`)"
                      for a in node.names if a.name in BANNED_MODULES]
        if isinstance(node, ast.Name) and (node.id in BANNED_NAMES or node.id.startswith("__")):
            found.append(f"the name `{node.id}`")
        if isinstance(node, ast.alias) and (node.name in BANNED_NAMES or node.name.startswith("_")):
            found.append(f"the name `{node.name}`")
        if isinstance(node, ast.Attribute) and (
                node.attr.startswith("_") or node.attr in BANNED_NAMES
                or node.attr.startswith(("f_", "tb_", "gi_", "cr_", "ag_", "co_"))
                or node.attr in BANNED_ATTRIBUTES or node.attr in BANNED_MODULES):
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


def _module_allowed(name: str) -> bool:
    parts = name.split(".")
    return parts[0] not in BANNED_MODULES and not name.startswith(BANNED_COURSE) and not any(
        p.startswith("_") for p in parts)


def banned_modules_in(namespace: dict, preset: dict) -> list[str]:
    """Modules the answer's namespace holds that the lint would refuse to import (also under
    another name, `from numpy.f2py import os as helper`): in its names, its functions'
    defaults and closures (its own functions only), its classes' attributes, and containers of
    these. `preset`: the
    names grading put there itself (np, jnp, jax)."""
    import types

    found, seen = [], set()

    def visit(value, where: str, depth: int) -> None:
        if depth > 6 or id(value) in seen:
            return
        seen.add(id(value))
        if isinstance(value, types.ModuleType):
            if not _module_allowed(value.__name__):
                found.append(f"the module `{value.__name__}` (as {where})")
            return
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if isinstance(value, property):
            for f in (value.fget, value.fset, value.fdel):
                visit(f, where, depth + 1)
            return
        if isinstance(value, types.FunctionType):
            if value.__globals__ is not namespace:
                return  # a library's function: only the answer's own functions are looked into
            for d in (value.__defaults__ or ()):
                visit(d, f"a default of `{value.__name__}`", depth + 1)
            for d in (value.__kwdefaults__ or {}).values():
                visit(d, f"a default of `{value.__name__}`", depth + 1)
            for cell in value.__closure__ or ():
                try:
                    visit(cell.cell_contents, f"a variable of `{value.__name__}`", depth + 1)
                except ValueError:  # an empty cell
                    pass
            visit(getattr(value, "__wrapped__", None), where, depth + 1)
        elif isinstance(value, type) and value.__module__ == namespace.get("__name__"):
            for k, v in vars(value).items():
                visit(v, f"`{value.__name__}.{k}`", depth + 1)
        elif isinstance(value, (tuple, list, set, frozenset)):
            for v in value:
                visit(v, where, depth + 1)
        elif isinstance(value, dict):
            for v in value.values():
                visit(v, where, depth + 1)
        elif hasattr(value, "__wrapped__") and not isinstance(value, type):  # jax.jit, functools.wraps
            visit(value.__wrapped__, where, depth + 1)

    for k, v in namespace.items():
        if k != "__builtins__" and not (k in preset and preset[k] is v):
            visit(v, f"`{k}`", 0)
    return sorted(set(found))


# Audit events (CPython 3.11, https://docs.python.org/3.11/library/audit_events.html) refused while
# the answer's code is on the stack: frames (the grader's locals), the garbage collector's view
# of every object, profilers, code objects built by hand, other processes, signals, file descriptors,
# and changes to files (a check module, a `.pth` file or a submission rewritten would change what
# every later check runs: `python -m helpers.course.grade` runs all of them before any `otter run`).
FRAME_MODULES = frozenset({"inspect", "traceback", "logging", "pdb", "bdb", "cgitb", "trace", "profile", "cProfile",
                           "tracemalloc", "faulthandler", "asyncio.tasks", "asyncio.base_tasks", "code", "doctest"})
FRAME_ATTRIBUTES = frozenset({"tb_frame", "gi_frame", "cr_frame", "ag_frame"})
REFUSED_EVENTS = frozenset({
    "sys._getframe", "sys._current_frames", "sys._current_exceptions", "sys.settrace", "sys.setprofile",
    "sys.addaudithook", "gc.get_objects", "gc.get_referrers", "gc.get_referents", "code.__new__",
    "os.kill", "os.killpg", "os.system", "os.exec", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn",
    "subprocess.Popen", "pty.spawn", "signal.pthread_kill", "ctypes.dlopen", "ctypes.dlsym", "ctypes.addressof",
    "ctypes.cdata", "ctypes.call_function", "ctypes.string_at", "ctypes.wstring_at", "ctypes.PyObj_FromPtr",
    "socket.connect", "socket.bind",
    "os.rename", "os.remove", "os.rmdir", "os.mkdir", "os.symlink", "os.link", "os.truncate", "os.chmod",
    "os.chown", "os.utime", "os.chflags", "os.lchflags", "os.removexattr", "os.setxattr", "shutil.copyfile",
    "shutil.copymode", "shutil.copystat", "shutil.copytree", "shutil.move", "shutil.rmtree", "shutil.make_archive",
    "shutil.unpack_archive", "sqlite3.connect",
})
# Of those, what writes files or starts processes: refused on every thread from the moment the
# answer's cell runs, answer on the stack or not (a library's worker thread, a greenlet or a
# finalizer runs the answer's calls with no frame of the answer on its stack), besides opening a
# file for writing or by descriptor.
PROCESS_FILE_EVENTS = frozenset(e for e in REFUSED_EVENTS if e.split(".")[0] in ("os", "subprocess", "pty", "shutil",
                                                                                 "signal", "socket", "sqlite3"))
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND  # `open` for writing (its audit flags)
REFUSED: list[str] = []  # the events refused since the guard was installed (the answer may catch the error)


class Refused(RuntimeError):
    """An answer's code reached into the interpreter or the process (see `install_guard`)."""


def install_guard(namespace: dict) -> None:
    """`sys.addaudithook`: while a frame of the answer's code (globals `namespace`) is on the
    stack, the events `REFUSED_EVENTS` (also renaming, removing and copying files), the frame
    attributes `FRAME_ATTRIBUTES` (`inspect.stack`, `inspect.currentframe`, a traceback's or
    generator's frame), `open` of a file descriptor and `open` of a file for writing raise
    `Refused` and are recorded in `REFUSED` (grading then fails the answer). On every thread,
    writing, renaming or removing files and the process events
    (`PROCESS_FILE_EVENTS`) are refused from the moment the guard is installed, answer on the
    stack or not (a library's worker thread, a greenlet, a finalizer). A hook cannot be
    removed: this process grades one answer and exits. Not a sandbox: it closes the routes the
    review found, not every route."""
    busy = [False]

    def answer_on_stack(event: str) -> bool:
        frame = sys._getframe(2)  # reentrant: this very call raises an event, which `busy` lets through
        if event in ("sys._getframe", "sys._current_frames") and frame.f_globals is not namespace \
                and frame.f_globals.get("__name__") not in FRAME_MODULES:
            return False  # a library finding its caller's module (namedtuple, JAX's source info) keeps the frame
        while frame is not None:
            if frame.f_globals is namespace:
                return True
            frame = frame.f_back
        return False

    def hook(event: str, args: tuple) -> None:
        if busy[0]:
            return
        if event == "object.__getattr__":
            if len(args) < 2 or args[1] not in FRAME_ATTRIBUTES:
                return
            what = f"the attribute `.{args[1]}` (a frame)"
        elif event == "open":
            if isinstance(args[0], int):
                what = "`open` of a file descriptor"
            elif (len(args) > 2 and isinstance(args[2], int) and args[2] & WRITE_FLAGS) \
                    or (len(args) > 1 and isinstance(args[1], str) and set(args[1]) & set("wax+")):
                what = "a file opened for writing"
            else:
                return
        elif event in REFUSED_EVENTS:
            what = f"`{event}`"
        else:
            return
        if event == "open" or event in PROCESS_FILE_EVENTS:
            # on any thread, answer on the stack or not (a worker thread, a greenlet, a finalizer that runs
            # after the answer returned): the grader itself writes and starts nothing once the cell runs
            mine = True
        elif event == "sys.setprofile" and _forbidden_tripped():
            mine = False  # the profiler removed after a "write it yourself" raise: that message, not this one
        else:
            busy[0] = True
            try:
                mine = answer_on_stack(event)
            finally:
                busy[0] = False
        if mine:
            REFUSED.append(what)
            raise Refused(f"grading refuses {what}: your function may not reach into the interpreter or the process")

    sys.addaudithook(hook)


def _forbidden_tripped() -> bool:
    """Whether a forbidden helper was called (`checks._common.forbid`): CPython then removes the
    profile hook, an event that is not the answer's doing."""
    from helpers.course.checks import _common

    return bool(_common._TRIPPED)


def _explain(error: BaseException, dropped: dict[str, str]) -> str:
    """The sentence for an exception the answer's code raised; a NameError or AttributeError
    on a name bound only by a statement grading drops says so."""
    text = f"{type(error).__name__}: {error}"
    name = getattr(error, "name", None)
    if isinstance(error, (NameError, AttributeError)) and name in dropped:
        text += (f". `{name}` is set in {dropped[name]}, which grading does not run (top-level statements are "
                 f"not graded): put `{name}` inside the function (or make it a literal constant of the class)")
    return text


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
        why = []
        if any(b.startswith("the module") for b in bad):
            why.append(f"modules: {WHY_MODULE}")
        if any(not b.startswith("the module") for b in bad):
            why.append("names and attributes: they reach the interpreter's internals (frames, code objects, "
                       "attributes by name, `_private` parts) or the grader")
        return {"passed": False, "message": f"{name}: grading runs your functions alone; they may not use "
                                            f"{', '.join(bad)} ({'; '.join(why)})"}
    dropped = dropped_names(source)
    module = importlib.import_module(CHECKS[name])
    check = getattr(module, name)
    import jax
    import jax.numpy as jnp
    import numpy as np

    preset = {"np": np, "jnp": jnp, "jax": jax}
    import types

    answer = types.ModuleType("__answer__")  # a module of its own: dataclasses look their class's module up
    sys.modules["__answer__"] = answer
    namespace = answer.__dict__
    namespace.update(preset)
    extra = _check_imports(module.__file__)
    snap = _snapshot(extra)
    sys.dont_write_bytecode = True  # an import the answer makes writes no `.pyc` (the guard refuses writing files)
    import tempfile

    tempfile.gettempdir()  # probed (by writing a file) now, not by a library imported while the answer runs
    install_guard(namespace)
    try:
        exec(compile(graded, "<answer cell>", "exec"), namespace)
    except Exception as e:
        return {"passed": False, "message": f"{name}: your cell raised {_explain(e, dropped)}"}
    if REFUSED:
        return {"passed": False, "message": f"{name}: grading refused {REFUSED[0]} in your cell"}
    held = banned_modules_in(namespace, preset)
    if held:
        return {"passed": False, "message": f"{name}: grading runs your functions alone; your cell holds "
                                            f"{', '.join(held[:3])} ({WHY_MODULE})"}
    # only modules the cell imported are added; the pre-cell state of the others is kept, so a
    # change made while the cell was defined (decorators, defaults, imports) is still detected
    for key, value in _snapshot([m for m in sys.modules if m not in snap and (m.startswith("helpers") or m in extra)]).items():
        snap.setdefault(key, value)
    student = namespace.get(function)
    if not callable(student):
        return {"passed": False, "message": f"{name}: your cell does not define the function `{function}`"}
    try:
        message, passed = check(student, seed=request.get("seed")), True
    except CheckFailed as e:
        message, passed = str(e), False
    except Exception as e:  # the student's code crashed: its own error, as a failed test
        message, passed = f"{name}: your code raised {_explain(e, dropped)}", False
    if REFUSED:
        return {"passed": False, "message": f"{name}: grading refused {REFUSED[0]} while your function ran: it may "
                                            "not reach into the interpreter or the process"}
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
