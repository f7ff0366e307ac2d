"""End to end: the Otter assignment built from chapter 1, a folder of submissions graded
with `python -m helpers.course.grade` (each in a fresh `otter run`, each check in a fresh
process that gets only the answer cell's source, and each answer cell also read from the file
and checked by the grader itself). The correct submission scores full marks; a stub, a typical
mistake, a monkeypatched check, a call of the course's reference, answers hard-coded from the
book's cases, and wrong answers whose notebook forges Otter's passes through its own kernel
each lose the marks they should. The end-to-end test needs the `grading` extra (otter-grader)
and is skipped without it."""

import csv
import json
import linecache
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from helpers.course import exercises, grade, grading
from helpers.course import otter as course_otter

ROOT = exercises.ROOT


def _book_auroc_cases() -> dict:
    """The book's AUROC cases and their answers, as a cheat would collect them from the
    public check (here straight from a spy: the best such a table can be)."""
    from helpers import checks

    table = {}
    mine = exercises.solutions(ROOT / "chapters" / "01_data_and_model.ipynb")["my_auroc"]

    def spy(y, s):
        table[repr((np.asarray(y).tolist(), np.asarray(s).tolist()))] = float(mine(y, s))
        return table[repr((np.asarray(y).tolist(), np.asarray(s).tolist()))]

    checks.check_auroc(spy)
    return table


ANSWERS = {  # submission -> {function: source of its answer cell}; absent: the book's solution; "STUB": the template
    "correct": {},
    "stub": {"my_auroc": "STUB", "my_mcc": "STUB"},
    "cheats": {  # a monkeypatched check with a wrong answer; the course's own MCC
        "my_auroc": "from helpers import checks\nfrom helpers.course.checks import _common, ch01\n"
                    "checks.check_auroc = ch01.check_auroc = lambda f, **k: 'AUROC: all cases pass'\n"
                    "_common._collect = ch01._collect = lambda student, calls, **k: [np.asarray(0.5)] * len(calls)\n\n"
                    "def my_auroc(y, scores):\n    return 0.5\n",
        "my_mcc": "from helpers import metrics\n\ndef my_mcc(y, pred):\n"
                  "    return metrics.classification_metrics(y, 2.0 * pred - 1.0)['mcc']\n"},
    # the book's AUROC cases hard-coded (inside the function: top-level statements are not graded); a plain
    # mistake for the MCC (accuracy instead); ties counted as wins, the other plain mistake, is in tests/test_checks.py
    "lookup": {
        "my_auroc": "def my_auroc(y, scores):\n    answers = {table!r}\n"
                    "    return answers.get(repr((np.asarray(y).tolist(), np.asarray(scores).tolist())), 0.5)\n",
        "my_mcc": "def my_mcc(y, pred):\n    return float(np.mean(np.asarray(y) == np.asarray(pred)))\n"},
    # Forging through the student's kernel: a cell of its own (not an answer cell) before the answers, run by
    # `otter run` in the process that then runs the test cells. Both pass every Otter test of these wrong answers.
    "forged-result": {  # the freshly loaded grading.py takes `secrets` and `subprocess` from sys.modules
        "my_auroc": "def my_auroc(y, scores):\n    return 0.5\n", "my_mcc": "def my_mcc(y, pred):\n    return 0.0\n",
        "CELL": "import secrets, subprocess\nsecrets.token_hex = lambda nbytes=None: '0' * 32\n"
                "subprocess.run = lambda *a, **k: subprocess.CompletedProcess(\n"
                "    a, 0, '0' * 32 + ' {\"passed\": true, \"message\": \"ok\"}\\n', '')\n"},
    "forged-source": {  # linecache hands run_check the book's answers for the cells that defined the wrong ones
        "my_auroc": "def my_auroc(y, scores):\n    return 0.5\n", "my_mcc": "def my_mcc(y, pred):\n    return 0.0\n",
        "CELL": "import linecache\nbook, getlines = {'my_auroc': {book_my_auroc!r}, 'my_mcc': {book_my_mcc!r}}, linecache.getlines\n\n"
                "def forged(filename, module_globals=None):\n    lines = getlines(filename, module_globals)\n"
                "    name = next((n for n in book if any(f'def {n}(' in ln for ln in lines)), None)\n"
                "    return book[name].splitlines(True) if name else lines\n\n"
                "linecache.getlines = forged\n"},
}
EXPECTED = {"correct": (2, 2), "stub": (0, 0), "cheats": (0, 0), "lookup": (1, 0),
            "forged-result": (0, 0), "forged-source": (0, 0)}


def _book(name: str) -> str:
    return next(e.solution for e in exercises.exercises(ROOT / "chapters" / "01_data_and_model.ipynb") if e.function == name)


def _submission(student_nb: nbformat.NotebookNode, answers: dict, table: dict) -> nbformat.NotebookNode:
    nb = nbformat.from_dict(json.loads(json.dumps(student_nb)))
    for cell in nb.cells:
        if "otter_answer_cell" not in cell.metadata.get("tags", []):
            continue
        name = next(f for f in ("my_auroc", "my_mcc") if f"def {f}(" in cell.source)
        src = answers.get(name)
        if src is None:
            cell.source = _book(name)
        elif src != "STUB":
            cell.source = src.replace("{table!r}", repr(table))
    if "CELL" in answers:  # a cell of the student's own, before the first answer
        first = next(i for i, c in enumerate(nb.cells) if "otter_answer_cell" in c.metadata.get("tags", []))
        nb.cells.insert(first, nbformat.v4.new_code_cell(
            answers["CELL"].replace("{book_my_auroc!r}", repr(_book("my_auroc"))).replace("{book_my_mcc!r}", repr(_book("my_mcc")))))
    return nb


@pytest.mark.slow
def test_grade_a_folder_of_submissions(tmp_path, monkeypatch):
    """Graded as the README says, with relative paths (`otter run` works in a temporary folder)."""
    pytest.importorskip("otter")
    dist = tmp_path / "dist"
    ch1 = ROOT / "chapters" / "01_data_and_model.ipynb"
    (folder,) = course_otter.build(dist, [ch1], limit_s=60)
    secret = (dist / course_otter.SECRET_FILE).read_text().strip()
    assert len(secret) >= 16 and (dist / course_otter.SECRET_FILE).stat().st_mode & 0o777 == 0o600
    import zipfile

    with zipfile.ZipFile(next(folder.glob("*-autograder_*.zip"))) as z:  # the secret is not in the zip
        assert not any(secret.encode() in z.read(n) for n in z.namelist())
    case = {"check": "check_auroc", "function": "my_auroc", "limit_s": 60, "uses": (), "points": 1.0}
    mcc = {**case, "check": "check_mcc", "function": "my_mcc", "uses": ("my_auroc",)}
    assert grade.autograder_tests(next(folder.glob("*-autograder_*.zip"))) == {  # what grade runs itself
        "ch01_auroc": [{**case, "hidden": False}, {**case, "hidden": True}],
        "ch01_mcc": [{**mcc, "hidden": False}, {**mcc, "hidden": True}]}
    student = nbformat.read(dist / ch1.stem / "student" / f"{ch1.stem}.ipynb", as_version=4)
    assert not any("Each solution is collapsed" in c.source for c in student.cells)  # no stale sentences
    assert not any("pos[:, None] >" in c.source for c in student.cells)  # the solution is not handed out
    table = _book_auroc_cases()
    subs = tmp_path / "submissions"
    for who, answers in ANSWERS.items():
        (subs / who).mkdir(parents=True)
        nbformat.write(_submission(student, answers, table), subs / who / f"{ch1.stem}.ipynb")
    out, feedback = tmp_path / "gradebook.csv", tmp_path / "feedback"
    monkeypatch.chdir(tmp_path)  # the README's command line: relative paths
    grade.main(["submissions", "--autograders", "dist", "--out", "gradebook.csv", "--feedback", "feedback"])
    rows = {r["submission"].split("/")[0]: r for r in csv.DictReader(out.open())}
    got = {who: (float(r["ch01_auroc"] or 0), float(r["ch01_mcc"] or 0)) for who, r in rows.items()}
    assert got == EXPECTED, got
    assert all(r["max"] == "4.0" and r["status"] == "graded" for r in rows.values())
    assert {who: r["otter"] for who, r in rows.items()} == {  # Otter's own totals: reported, not counted
        **{who: f"{sum(score):g}" for who, score in EXPECTED.items()}, "forged-result": "4", "forged-source": "4"}
    text = (feedback / "cheats" / f"{ch1.stem}.txt").read_text()
    assert "write it yourself" in text and "may not use" in text and "the module `helpers.course.checks" in text
    for who in ("forged-result", "forged-source"):  # Otter's tests passed; the isolated checks' sentences count
        text = (feedback / who / f"{ch1.stem}.txt").read_text()
        assert text.count("Otter's run of the notebook gave 2 (graded), more than the isolated checks: not counted") \
            == 2, text[:3000]
        assert "- public test (the book's cases): failed [cell 6]: for perfectly separated scores your AUROC is off" \
            in text, text[:3000]
    text = (feedback / "correct" / f"{ch1.stem}.txt").read_text()
    assert text.count(": passed [cell ") == 4 and "Otter's run of the notebook gave" not in text, text[:3000]


def test_fresh_check_ignores_a_monkeypatched_check_module(monkeypatch):
    """Patch what the imported checks really use (the chapter module's check and
    `_common._collect`, not only the re-export in `helpers.checks`): the grader runs the
    check in a fresh process, which never sees the patch."""
    from helpers import checks
    from helpers.course.checks import _common, ch01

    monkeypatch.setattr(checks, "check_auroc", lambda f, **k: "ok")
    monkeypatch.setattr(ch01, "check_auroc", lambda f, **k: "ok")
    monkeypatch.setattr(_common, "_collect", lambda student, calls, **k: [np.asarray(0.5)] * len(calls))
    monkeypatch.setattr(ch01, "_collect", lambda student, calls, **k: [np.asarray(0.5)] * len(calls))
    assert ch01.check_auroc(lambda y, s: 0.5) == "ok"  # the patch works on the imported module ...
    with pytest.raises(AssertionError, match="off by"):  # ... and the grader does not use it
        grading.run_check("check_auroc", lambda y, s: 0.5, function="my_auroc",
                          source="def my_auroc(y, s):\n    return 0.5\n")


# Reproductions of the adversarial review (items 1-4 and 6): each "submission" is the source of
# an answer cell, run as Otter runs it (in the grader's process, so its top-level statements
# patch this process), then the Otter test cell written by the build. Every one must score 0.
CHEATS = [
    pytest.param("check_auroc", "def my_auroc(y, s):\n    s[...] = 0.0\n    return 0.5\n", id="2-edit-scores-in-place"),
    pytest.param("check_mcc", "def my_mcc(y, p):\n    p[...] = y\n    return 1.0\n", id="2-edit-predictions-in-place"),
    pytest.param("check_auroc", "import helpers.course.grading as _g\n_g.run_check = lambda *a, **k: 'ok'\n\n"
                 "def my_auroc(y, s):\n    return 0.5\n", id="1-replace-run_check"),
    pytest.param("check_auroc", "import functools\nfrom helpers import metrics\n"
                 "metrics.auroc = functools.partial(lambda y, s: 0.5)\n\ndef my_auroc(y, s):\n    return 0.5\n",
                 id="3-partial-as-reference"),
    pytest.param("check_auroc", "from helpers import metrics\n_ns = {}\n"
                 "exec(compile('def auroc(y, s):\\n    return 0.5\\n', metrics.__file__, 'exec'), _ns)\n"
                 "metrics.auroc = _ns['auroc']\n\ndef my_auroc(y, s):\n    return 0.5\n",
                 id="3-reference-compiled-as-course-file"),
    pytest.param("check_auroc", "from helpers import metrics\n\ndef my_auroc(y, s):\n"
                 "    metrics.auroc = lambda *a: 0.5\n    return 0.5\n",
                 id="3-reference-replaced-during-the-check"),
    pytest.param("check_auroc", "import builtins\nbuiltins.abs = lambda x: 0.0\n\ndef my_auroc(y, s):\n    return 0.5\n",
                 id="3-builtins-abs"),
    pytest.param("check_auroc", "from helpers import metrics\n\ndef my_auroc(y, s):\n"
                 "    abs_ = lambda x: 0.0\n    __builtins__['abs'] = abs_\n    return 0.5\n", id="3-builtins-abs-in-the-function"),
    pytest.param("check_auroc", "import types\nfrom helpers import metrics\n"
                 "_ref = types.FunctionType(metrics.auroc.__code__, metrics.auroc.__globals__)\n\n"
                 "def my_auroc(y, s):\n    return _ref(y, s)\n", id="4-copy-of-forbidden-function"),
    pytest.param("check_auroc", "from helpers import metrics\n\n"
                 "def my_auroc(y, s):\n    ref = type(lambda: 0)(metrics.auroc.__code__, metrics.auroc.__globals__)\n"
                 "    return ref(y, s)\n", id="4-copy-of-forbidden-function-in-the-function"),
    pytest.param("check_mcc", "import importlib.util\nfrom helpers import metrics\n"
                 "_spec = importlib.util.spec_from_file_location('m2', metrics.__file__)\n"
                 "_m2 = importlib.util.module_from_spec(_spec)\n_spec.loader.exec_module(_m2)\n\n"
                 "def my_mcc(y, p):\n    return _m2.classification_metrics(y, 2.0 * p - 1)['mcc']\n",
                 id="4-second-copy-of-the-module"),
    pytest.param("check_auroc", "from sklearn.metrics import auc, roc_curve\n\n"
                 "def my_auroc(y, s):\n    return auc(*roc_curve(y, s)[:2])\n", id="4-sklearn-roc_curve-auc"),
    pytest.param("check_conjugate_gradient", "import jax.numpy as jnp\n\ndef my_conjugate_gradient(mv, b, tol, it):\n"
                 "    a = getattr(mv, '_a', None)\n    if a is None:  # the matrix in the closure\n"
                 "        a = next(c.cell_contents for c in mv.__closure__ if getattr(c.cell_contents, 'ndim', 0) == 2)\n"
                 "    return jnp.linalg.lstsq(a, b)[0]\n", id="4-matrix-off-the-matvec-lstsq"),
    pytest.param("check_conjugate_gradient", "import jax.numpy as jnp\n_solve = jnp.linalg.solve\n"
                 "for _n in (5, 20, 300):\n    _solve(jnp.eye(_n, dtype=jnp.float32), jnp.ones(_n, jnp.float32))\n\n"
                 "def my_conjugate_gradient(mv, b, tol, it):\n"
                 "    a = next(c.cell_contents for c in mv.__closure__ if getattr(c.cell_contents, 'ndim', 0) == 2)\n"
                 "    return _solve(a, b)\n", id="4-warmed-up-jitted-solve"),
    pytest.param("check_auroc", "import signal, time\n_slept = []\n\ndef my_auroc(y, s):  # right, but over the limit\n"
                 "    signal.alarm(0)\n    if not _slept:\n        _slept.append(time.sleep(12))\n"
                 "    y, s = np.asarray(y), np.asarray(s)\n    pos, neg = s[y == 1][:, None], s[y == 0][None, :]\n"
                 "    return float(((pos > neg) + 0.5 * (pos == neg)).mean())\n", id="6-alarm-switched-off"),
    pytest.param("check_auroc", "import time\n\ndef my_auroc(y, s):  # right, but over the limit\n"
                 "    time.sleep(12)\n    y, s = np.asarray(y), np.asarray(s)\n"
                 "    pos, neg = s[y == 1][:, None], s[y == 0][None, :]\n"
                 "    return float(((pos > neg) + 0.5 * (pos == neg)).mean())\n", id="6-over-the-time-limit"),
    pytest.param("check_auroc", "def my_auroc(y, s):\n    print('0' * 32 + ' {\"passed\": true, \"message\": \"ok\"}')\n"
                 "    raise SystemExit(0)\n", id="forged-result-line"),
]


@pytest.fixture
def restored():
    """Undo whatever a cheat did to the shared modules (the grader, the reference, builtins)."""
    import builtins

    from helpers import metrics

    mods = (builtins, metrics, grading)
    saved = [(m, dict(vars(m))) for m in mods]
    yield
    for m, attrs in saved:
        for k, v in attrs.items():
            if vars(m).get(k, v) is not v:
                setattr(m, k, v)


def _answer_cell(source: str, ns: dict, tag: str) -> None:
    """Run `source` as IPython runs a cell: compiled under a file name kept in `linecache`."""
    filename = f"<answer cell {tag}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), ns)


@pytest.mark.parametrize(("check", "source"), CHEATS)
def test_cheats_score_zero(check, source, restored, request):
    import jax
    import jax.numpy as jnp

    name = {"check_auroc": "my_auroc", "check_mcc": "my_mcc", "check_conjugate_gradient": "my_conjugate_gradient"}[check]
    ns = {"np": np, "jnp": jnp, "jax": jax}
    _answer_cell(source, ns, request.node.callspec.id)  # the answer cell, in the student's kernel
    test = grading.test_cell(check, name, hidden=False, limit_s=10)  # the Otter test cell, in the same kernel
    with pytest.raises(AssertionError):
        exec(compile(test, "<otter test>", "exec"), ns)


def test_book_solution_passes_through_the_test_cell(request):
    """The same path with the book's answer: the test cell passes (so the cheats above fail
    for their own reasons), and a top-level constant the function needs is not graded."""
    import jax
    import jax.numpy as jnp

    source = next(e.solution for e in exercises.exercises(ROOT / "chapters" / "01_data_and_model.ipynb")
                  if e.function == "my_auroc")
    ns = {"np": np, "jnp": jnp, "jax": jax}
    _answer_cell(source, ns, "book")
    exec(compile(grading.test_cell("check_auroc", "my_auroc", hidden=False, limit_s=60), "<otter test>", "exec"), ns)
    with pytest.raises(AssertionError, match="(not defined|NameError)"):
        grading.run_check("check_auroc", ns["my_auroc"], function="my_auroc",
                          source="HALF = 0.5\n\n" + source.replace("0.5 *", "HALF *"))


def test_forbidden_calls_are_caught_by_file_and_name():
    """Without the lint (in the student's own kernel, `checks.check_x(...)`): a copy of the
    reference's code and a second import of its module run code from the reference's file
    under its name, and the profile hook refuses them."""
    import importlib.util
    import types

    from helpers import checks, metrics

    ref = types.FunctionType(metrics.auroc.__code__, metrics.auroc.__globals__)
    with pytest.raises(checks.CheckFailed, match="write it yourself"):
        checks.check_auroc(lambda y, s: ref(y, s))
    spec = importlib.util.spec_from_file_location("metrics_again", metrics.__file__)
    again = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(again)
    with pytest.raises(checks.CheckFailed, match="write it yourself"):
        checks.check_mcc(lambda y, p: again.classification_metrics(y, 2.0 * p - 1.0)["mcc"])
    assert sys.getprofile() is None  # the hook is removed after the check


def test_an_answer_may_call_an_earlier_exercise():
    """Chapter 5's DeepLIFT answer calls the rescale multiplier of the exercise before it: the
    test cell sends that function's cell first."""
    import jax
    import jax.numpy as jnp

    ns = {"np": np, "jnp": jnp, "jax": jax}
    exs = exercises.exercises(ROOT / "chapters" / "05_deeplift.ipynb")
    for k, ex in enumerate(exs):
        _answer_cell(ex.solution, ns, f"ch05-{k}")
    test = course_otter._test(exs[1], hidden=False, limit_s=300, uses=(exs[0].function,)).source
    assert "uses=" in test
    exec(compile(test, "<otter test>", "exec"), ns)


def test_filter_and_lint():
    from helpers.course import sandbox

    src = "import numpy as np\nimport builtins\nbuiltins.abs = None\nX = 1\n\ndef f(a):\n    return a  # comment\n"
    assert sandbox.filter_source(src) == "import numpy as np\nimport builtins\n\ndef f(a):\n    return a"
    assert sandbox.lint(sandbox.filter_source(src)) == ["the module `builtins`"]
    bad = "def f(m):\n    return getattr(m, 'x'), m.__closure__, m._a, m.f_back\n"
    assert sandbox.lint(bad) == ["the attribute `.__closure__`", "the attribute `._a`", "the attribute `.f_back`",
                                 "the name `getattr`"]
    for ex in exercises.all_exercises():  # every book answer is allowed
        assert sandbox.lint(sandbox.filter_source(ex.solution)) == [], ex.name
    # modules that load a copy of the course's code from a path, or write files from C
    for module in ("pydoc", "imp", "sqlite3"):
        assert sandbox.lint(f"import {module}\n") == [f"the module `{module}`"], module


def test_hidden_cases_depend_on_the_source_and_the_salt_not_on_layout():
    from helpers.course.sandbox import source_seed

    a = "def f(y, s):\n    return 0.5\n"
    b = "def f(y, s):\n    return 0.25\n"
    a2 = "X = 3  # not graded\n\ndef f(y,   s):\n    # a comment\n    return 0.5\n"
    assert source_seed(a, "salt-one") == source_seed(a, "salt-one") == source_seed(a2, "salt-one")
    assert source_seed(a, "salt-one") != source_seed(b, "salt-one")
    assert source_seed(a, "salt-one") != source_seed(a, "salt-two")


def test_hidden_test_needs_the_secret_and_the_process_never_gets_it(monkeypatch):
    monkeypatch.delenv(grading.SALT_ENV, raising=False)
    src = "def my_auroc(y, s):\n    return 0.5\n"
    with pytest.raises(AssertionError, match="grading secret"):
        grading.run_check("check_auroc", lambda y, s: 0.5, function="my_auroc", source=src, hidden=True)
    monkeypatch.setenv(grading.SALT_ENV, "a-secret-0123")
    leak = ("import numpy as np\n\ndef my_mcc(y, p):\n    import os\n    return float(len(os.environ.get("
            f"{grading.SALT_ENV!r}, '')))\n")
    with pytest.raises(AssertionError, match="may not use .*the module `os`"):
        grading.run_check("check_mcc", lambda y, p: 0.0, function="my_mcc", source=leak, hidden=True)


def test_master_notebook_has_one_question_per_exercise_with_public_and_hidden_tests():
    nb = course_otter.master_notebook(ROOT / "chapters" / "03_integrated_gradients.ipynb")
    sources = [c.source for c in nb.cells]
    assert sum(s.startswith("# BEGIN QUESTION") for s in sources) == 2
    tests = [s for s in sources if "run_check" in s]
    assert len(tests) == 4 and sum("hidden: true" in s for s in tests) == 2
    assert all("run_path" in s and "salt" not in s for s in tests)  # loaded afresh; no secret in the tests
    assert sys.modules["helpers.course.otter"] is course_otter


@pytest.mark.slow
@pytest.mark.parametrize("ex", exercises.all_exercises(), ids=lambda e: e.name)
def test_every_book_answer_passes_in_the_fresh_process(ex):
    """The book's answer cell, graded as a submission (filtered, linted, run in a fresh process
    with its hidden cases, after the chapter's earlier answer cells, which an answer may call):
    passes, so the isolation refuses nothing a right answer needs."""
    chapter = exercises.exercises(ROOT / "chapters" / f"{ex.chapter}.ipynb")
    k = [e.function for e in chapter].index(ex.function)  # by name: the chapter may have been edited since collection
    source = "\n\n".join(e.solution for e in chapter[: k + 1])
    out = grading.isolated_check(ex.check, ex.function, source, seed=12345, limit_s=300)
    assert out["passed"], out["message"]


# Round 2 of the review. Lazy answers: an object whose __float__/__int__ calls the course's reference
# once the forbidden window has closed. Frames: a banned module handed out by an allowed package
# (`from numpy.f2py import os`), the stack walked to the sandbox's result channel.
LAZY_AUROC = ("from helpers import metrics\n\nclass Lazy:\n    def __init__(self, y, s):\n"
              "        self.y, self.s, self.calls = y, s, 0\n    def __float__(self):\n        self.calls += 1\n"
              "        return 0.5 if self.calls == 1 else float(metrics.auroc(self.y, self.s))\n\n"
              "def my_auroc(y, scores):\n    return Lazy(y, scores)\n")
LAZY_EDIT = ("from helpers import counterfactual\n\nclass Lazy:\n    def __init__(self, a, b):\n"
             "        self.a, self.b = a, b\n    def __float__(self):\n        return 0.0\n    def __int__(self):\n"
             "        return int(counterfactual.edit_distance(self.a, self.b))\n\n"
             "def my_edit_distance(a, b):\n    return Lazy(a, b)\n")
LAZY_SUBCLASS = ("from helpers import metrics\n\nclass Lazy(float):\n    def __float__(self):\n"
                 "        return float(metrics.auroc(*self.args))\n\ndef my_auroc(y, scores):\n"
                 "    out = Lazy(0.5)\n    out.args = (y, scores)\n    return out\n")
FRAMES = ("from {inspect_from} import inspect\nfrom {os_from} import os\nimport json\n\n"
          "def my_auroc(y, scores):\n    for fi in inspect.stack():\n"
          "        loc = inspect.getargvalues(fi.frame)[3]\n        if 'nonce' in loc and 'out' in loc:\n"
          "            loc['out'].write(loc['nonce'] + ' ' + json.dumps({{'passed': True, 'message': 'ok'}}) + '\\n')\n"
          "            loc['out'].flush()\n            os.kill(os.getpid(), 9)\n    return 0.5\n")
ROUND2 = [
    pytest.param("check_auroc", "my_auroc", LAZY_AUROC, "plain numbers or arrays", id="lazy-float-auroc"),
    pytest.param("check_edit_distance", "my_edit_distance", LAZY_EDIT, "plain numbers or arrays", id="lazy-int-edit"),
    pytest.param("check_auroc", "my_auroc", LAZY_SUBCLASS, "plain numbers or arrays", id="lazy-float-subclass"),
    pytest.param("check_auroc", "my_auroc", FRAMES.format(inspect_from="jax._src.api_util", os_from="numpy.testing._private.utils"),
                 "the module `inspect`", id="frames-private-paths"),
    pytest.param("check_auroc", "my_auroc", FRAMES.format(inspect_from="sklearn.base", os_from="numpy.f2py"),
                 "the module `os` \\(imported from `numpy.f2py`\\)", id="frames-public-paths"),
    pytest.param("check_auroc", "my_auroc", "import numpy.f2py\n\ndef my_auroc(y, scores):\n"
                 "    numpy.f2py.os.kill(numpy.f2py.os.getpid(), 9)\n", "the attribute `.os`", id="module-as-attribute"),
]


@pytest.mark.parametrize(("check", "function", "source", "says"), ROUND2)
@pytest.mark.parametrize("seed", [None, 31337], ids=["public", "hidden"])
def test_round2_cheats_score_zero(check, function, source, says, seed):
    out = grading.isolated_check(check, function, source, seed=seed, limit_s=120)
    assert not out["passed"] and __import__("re").search(says, out["message"]), out["message"]


GUARD_SCRIPT = r'''
import sys
sys.path.insert(0, {root!r})
from helpers.course import sandbox
ns = {{"__name__": "__answer__"}}
sandbox.install_guard(ns)
import collections, inspect, os
sys._getframe()  # the grader's own code keeps its frames
exec(compile("""
def current(inspect):
    return inspect.currentframe()
def stack(inspect):
    return inspect.stack()
def gen_frame():
    g = (i for i in range(3))
    return g.gi_frame
def tb_frame():
    try:
        1 / 0
    except ZeroDivisionError as e:
        return e.__traceback__.tb_frame
def kill(os):
    os.kill(os.getpid(), 9)
def fd(os):
    return open(1, "w", closefd=False)
def record(collections):
    return collections.namedtuple("P", "a b")(1, 2).b  # a library's own sys._getframe: allowed
""", "<answer cell>", "exec"), ns)
for name, arg in [("current", inspect), ("stack", inspect), ("gen_frame", None), ("tb_frame", None),
                  ("kill", os), ("fd", os)]:
    try:
        ns[name](*([arg] if arg is not None else []))
        print("NOT REFUSED", name)
    except sandbox.Refused as e:
        print("refused", name)
print("record", ns["record"](collections))
print("log", len(sandbox.REFUSED))
'''


def test_audit_guard_refuses_frames_and_signals_from_the_answer(tmp_path):
    """The guard (`sys.addaudithook`, in a process of its own: a hook cannot be removed) refuses
    `inspect.currentframe`, `inspect.stack`, a generator's and a traceback's frame, `os.kill` and
    `open` of a file descriptor when the answer's code asks, and lets a library find its caller."""
    import subprocess

    script = GUARD_SCRIPT.format(root=str(ROOT))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert [ln for ln in lines if ln.startswith("refused")] == [
        "refused current", "refused stack", "refused gen_frame", "refused tb_frame", "refused kill", "refused fd"], lines
    assert "record 2" in lines and "log 6" in lines


def test_modules_held_by_the_answer_are_found():
    import os as os_module
    import types

    from helpers.course import sandbox

    ns = {"__name__": "__answer__", "np": np}
    exec("import numpy.linalg as la\n\nclass K:\n    pass\n\ndef f(x, m=None):\n    return m\n", ns)
    assert sandbox.banned_modules_in(ns, {"np": np}) == []
    ns["tools"] = os_module  # `from numpy.f2py import os as tools`
    ns["f"].__defaults__ = (sys,)
    ns["K"].helper = types  # a class attribute
    found = sandbox.banned_modules_in(ns, {"np": np})
    assert found == ["the module `os` (as `tools`)", "the module `sys` (as a default of `f`)",
                     "the module `types` (as `K.helper`)"], found


HARMLESS = {  # correct answers the first lint refused or the filter broke (review round 2, item 5)
    "operator-reduce": "import functools, operator\n\ndef my_auroc(y, scores):\n"
                       "    n = functools.reduce(operator.mul, np.shape(y), 1)\n    assert n == len(y)\n{body}",
    "local-named-input": "def my_auroc(y, scores):\n    input = scores\n    scores = input\n{body}",
    "dataclass-fields": "from dataclasses import dataclass\n\n@dataclass\nclass Pairs:\n    pos: object\n    neg: object\n\n"
                        "def my_auroc(y, scores):\n    p = Pairs(scores[y == 1], scores[y == 0])\n"
                        "    return float((p.pos[:, None] > p.neg[None, :]).mean() + 0.5 * (p.pos[:, None] == p.neg[None, :]).mean())\n",
}
AUROC_BODY = ("    pos, neg = scores[y == 1], scores[y == 0]\n"
              "    return float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())\n")


@pytest.mark.parametrize("name", HARMLESS)
def test_harmless_answers_pass(name):
    out = grading.isolated_check("check_auroc", "my_auroc", HARMLESS[name].replace("{body}", AUROC_BODY), limit_s=120)
    assert out["passed"], out["message"]


def test_dropped_statements_are_named():
    src = ("HALF = 0.5\n\nclass A:\n    tie = float('0.5')\n\ndef my_auroc(y, scores):\n"
           + AUROC_BODY.replace("0.5 *", "HALF *"))
    from helpers.course import sandbox

    assert sandbox.dropped_names(src) == {
        "HALF": "a top-level statement",
        "tie": "the body of class `A` (only methods, literal constants and field annotations are kept)",
    }
    out = grading.isolated_check("check_auroc", "my_auroc", src, limit_s=120)
    assert not out["passed"] and "top-level statements are not graded" in out["message"] and "`HALF`" in out["message"]
    bad = sandbox.lint("import os\nfrom numpy.f2py import os as tools\n")
    assert bad == ["the module `os`", "the module `os` (imported from `numpy.f2py`)"], bad


# Changes made while the answer cell is defined (review item: the sandbox's post-cell snapshot keeps
# the modules' state from before the cell, `snap.setdefault`). A decorator or a default argument runs
# when the cell is defined: here it replaces the course's reference with one that agrees with a wrong
# answer, so the check's expected values would agree with it too. Plain attribute assignment inside a
# function passes the lint (only `setattr`, `__dict__` and `_private` names are refused).
DEFINITION_TIME = {
    "decorator": "from helpers import metrics\n\ndef half(y, s):\n    return 0.5\n\n"
                 "def patch(f):\n    metrics.auroc = half\n    return f\n\n"
                 "@patch\ndef my_auroc(y, scores):\n    return 0.5\n",
    "default-argument": "from helpers import metrics\n\ndef half(y, s):\n    return 0.5\n\n"
                        "def patch():\n    metrics.auroc = half\n    return 0.5\n\n"
                        "def my_auroc(y, scores, tie=patch()):\n    return tie\n",
}


@pytest.mark.parametrize("how", DEFINITION_TIME)
def test_a_change_made_while_the_cell_is_defined_is_detected(how):
    """Fails if the post-cell snapshot overwrote the pre-cell one (`snap[key] = value`): the
    replaced reference would then be the baseline, and the wrong answer would pass."""
    out = grading.isolated_check("check_auroc", "my_auroc", DEFINITION_TIME[how], limit_s=120)
    assert not out["passed"] and "changed helpers.metrics.auroc" in out["message"], out["message"]


def test_auroc_from_the_mann_whitney_u_loses_the_marks():
    """SciPy's Mann-Whitney U over the number of pairs is the AUROC: graded as a submission
    (public and hidden cases), it scores 0 with "write it yourself"."""
    source = ("from scipy.stats import mannwhitneyu\n\ndef my_auroc(y, scores):\n"
              "    y, scores = np.asarray(y), np.asarray(scores)\n    pos, neg = scores[y == 1], scores[y == 0]\n"
              "    return float(mannwhitneyu(pos, neg).statistic / (len(pos) * len(neg)))\n")
    for seed in (None, 31337):
        out = grading.isolated_check("check_auroc", "my_auroc", source, seed=seed, limit_s=120)
        assert not out["passed"] and "write it yourself" in out["message"] and "mannwhitneyu" in out["message"], out


# The instructor's own checks (`helpers.course.grade`): the tests read back from the zip, the answer
# cells read from the notebook file, never run.
@pytest.mark.parametrize("uses", [(), ("my_auroc",), ("my_a", "my_b")])
@pytest.mark.parametrize("hidden", [False, True])
def test_test_cell_reads_back(hidden, uses):
    code = grading.test_cell("check_mcc", "my_mcc", hidden=hidden, limit_s=77, uses=uses)
    assert grading.parse_test_cell(code) == {"check": "check_mcc", "function": "my_mcc", "hidden": hidden,
                                             "limit_s": 77, "uses": uses}


@pytest.mark.parametrize("code", ["assert run_check('check_mcc', my_mcc)", "x = (",
                                  "_g['run_check']('check_mcc', my_mcc, function=name, hidden=False, limit_s=1)",
                                  "_g['run_check']('check_mcc', my_mcc, function='my_mcc', hidden='no', limit_s=1)"])
def test_parse_test_cell_refuses_other_code(code):
    with pytest.raises(ValueError, match="code: not a test written by .*rebuild the autograder"):
        grading.parse_test_cell(code)


def _notebook(sources: list, tmp_path, name="01_data_and_model.ipynb"):
    """A notebook of code cells (a (source, tags) pair for a tagged cell; a cell as it is),
    written to `tmp_path`."""
    cells = []
    for s in sources:
        text, tags = s if isinstance(s, tuple) else (s, [])
        cells.append(s if isinstance(s, dict) else nbformat.v4.new_code_cell(text, metadata={"tags": tags} if tags else {}))
    path = tmp_path / name
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


def test_answer_cell_is_the_last_definition_otter_runs(tmp_path):
    path = _notebook(["%matplotlib inline\nimport numpy as np",
                      "def my_auroc(y, s):\n    return 0.25\n",
                      nbformat.v4.new_markdown_cell("def my_auroc(y, s):\n    return 1\n"),  # not code
                      "from helpers.metrics import auroc as my_mcc\n",
                      "def my_auroc(y, s):\n    return 0.5\n",
                      ("def my_auroc(y, s):\n    return 0.75\n", ["otter_ignore"]),  # otter run skips it
                      "x = my_auroc\n"], tmp_path)
    cells = grade.notebook_cells(path)
    assert [i for i, _ in cells] == [0, 1, 3, 4, 6]
    assert cells[0][1].startswith("get_ipython().run_line_magic('matplotlib', 'inline')")  # as the kernel compiles it
    assert grade.answer_cell(cells, "my_auroc") == (4, "def my_auroc(y, s):\n    return 0.5\n")
    assert grade.answer_cell(cells, "my_mcc")[0] == 3
    assert grade.answer_cell(cells, "my_spearman") is None
    broken = (7, "def my_auroc(y, s)\n    return 1\n")  # does not parse: the kernel keeps the earlier definition
    assert grade.answer_cell([*cells, broken], "my_auroc")[0] == 4
    assert grade.answer_cell([cells[0], broken], "my_auroc") == broken  # the only try: its check says why


def test_isolated_results_never_run_the_notebook(tmp_path):
    """The forging cell (here it would also leave a file behind) never runs: each answer cell
    is graded on its own, the earlier exercise's cell sent first only when the answer names it."""
    marker = tmp_path / "ran.txt"
    wrong_mcc = "def my_mcc(y, pred):\n    return float(my_auroc(y, pred)) * 0.0\n"
    path = _notebook([f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n",
                      _book("my_auroc"), "def unused():\n    pass\n", wrong_mcc], tmp_path)
    test = {"check": "check_mcc", "function": "my_mcc", "limit_s": 120, "uses": ("my_auroc",), "points": 1.0}
    tests = {"ch01_auroc": [{"check": "check_auroc", "function": "my_auroc", "hidden": True, "limit_s": 120,
                             "uses": (), "points": 1.0}],
             "ch01_mcc": [{**test, "hidden": False}]}
    out = grade.isolated_results(grade.notebook_cells(path), tests, secret="a-secret-0123")
    assert not marker.exists()
    (auroc,), (mcc,) = out["ch01_auroc"], out["ch01_mcc"]
    assert auroc["passed"] and auroc["cells"] == [1], auroc
    assert not mcc["passed"] and mcc["cells"] == [1, 3] and "MCC" in mcc["message"], mcc


def test_grade_sends_what_the_test_cell_sends(tmp_path, monkeypatch):
    """The grader's own check of a notebook gets the source and the seed that Otter's test cell
    gets in the kernel (`run_check`): the earlier exercise's cell first when the answer calls
    it, the book's cases for the public test, the same hidden seed."""
    from helpers.course import sandbox

    sent = []

    def spy(name, function, source, *, seed=None, limit_s=120):
        sent.append((name, function, sandbox.filter_source(source), seed))
        return {"passed": True, "message": "ok"}

    monkeypatch.setattr(grading, "isolated_check", spy)
    monkeypatch.setenv(grading.SALT_ENV, "a-secret-0123")
    cells = ["%matplotlib inline", _book("my_auroc"), "def my_mcc(y, pred):\n    return my_auroc(y, pred) * 0.0\n"]
    ns = {"np": np}
    for k, text in enumerate(cells[1:]):
        _answer_cell(text, ns, f"same-source-{k}")
    for hidden in (False, True):  # as the kernel runs the test cells
        grading.run_check("check_mcc", ns["my_mcc"], function="my_mcc", hidden=hidden, uses=[ns["my_auroc"]])
        grading.run_check("check_auroc", ns["my_auroc"], function="my_auroc", hidden=hidden)
    kernel, sent[:] = sent[:], []
    case = {"check": "check_mcc", "function": "my_mcc", "limit_s": 120, "uses": ("my_auroc",), "points": 1.0}
    auroc = {**case, "check": "check_auroc", "function": "my_auroc", "uses": ()}
    tests = {"mcc": [{**case, "hidden": False}], "auroc": [{**auroc, "hidden": False}],
             "mcc-hidden": [{**case, "hidden": True}], "auroc-hidden": [{**auroc, "hidden": True}]}
    grade.isolated_results(grade.notebook_cells(_notebook(cells, tmp_path)), tests, secret="a-secret-0123")
    assert sent == kernel and len(kernel) == 4
    assert kernel[0][2].startswith("def my_auroc") and kernel[0][3] is None and kernel[2][3] is not None


def _zip(tmp_path, tests: dict):
    """An autograder zip with Otter's OK-format tests: name -> [(code, hidden, points)]."""
    import pprint
    import zipfile

    path = tmp_path / "ch-autograder_1.zip"
    with zipfile.ZipFile(path, "w") as z:
        for name, cases in tests.items():
            test = {"name": name, "points": None, "suites": [{"cases": [
                {"code": "".join(f">>> {line}\n" for line in code.splitlines()), "hidden": hidden, "locked": False,
                 "points": points} for code, hidden, points in cases], "scored": True, "setup": "", "teardown": "",
                "type": "doctest"}]}
            z.writestr(f"tests/{name}.py", f"OK_FORMAT = True\n\ntest = {pprint.pformat(test)}\n")
        z.writestr("run_autograder", "")
    return path


def test_autograder_tests_read_the_zip_and_refuse_others(tmp_path):
    public = grading.test_cell("check_mcc", "my_mcc", hidden=False, limit_s=9, uses=("my_auroc",))
    path = _zip(tmp_path, {"ch01_mcc": [(public, False, 1), (public.replace("hidden=False", "hidden=True"), True, 1)]})
    case = {"check": "check_mcc", "function": "my_mcc", "limit_s": 9, "uses": ("my_auroc",), "points": 1.0}
    assert grade.autograder_tests(path) == {"ch01_mcc": [{**case, "hidden": False}, {**case, "hidden": True}]}
    for tests in ({"q": [("assert my_mcc(1) == 2", False, 1)]}, {"q": [(public, False, None)]}, {}):
        with pytest.raises(ValueError, match="autograders: .*(not an Otter test of this course|has no tests).*rebuild"):
            grade.autograder_tests(_zip(tmp_path, tests))
    (tmp_path / "bad.zip").write_text("not a zip")
    with pytest.raises(ValueError, match="autograders: .*bad.zip is not a readable zip"):
        grade.autograder_tests(tmp_path / "bad.zip")


def test_build_into_a_relative_folder(tmp_path, monkeypatch):
    """The README's build command names `dist/` relative to the current folder; `otter assign`
    runs inside it, where that relative path would name nothing."""
    pytest.importorskip("otter")
    monkeypatch.chdir(tmp_path)
    (folder,) = course_otter.build("dist", [ROOT / "chapters" / "01_data_and_model.ipynb"], limit_s=60)
    assert folder == tmp_path / "dist" / "01_data_and_model" / "autograder"
    assert len(list(folder.glob("*-autograder_*.zip"))) == 1


WRITES = {  # an answer that writes a file (a check module, a .pth file) changes what every later check runs
    "savetxt": "def my_auroc(y, scores):\n    np.savetxt({path!r}, [], header='print(1)', comments='')\n    return 0.5\n",
    "tofile": "def my_auroc(y, scores):\n    np.ones(3).tofile({path!r})\n    return 0.5\n",
    "memmap": "def my_auroc(y, scores):\n    np.memmap({path!r}, mode='w+', shape=(3,))\n    return 0.5\n",
    "while-defined": "def write():\n    np.save({path!r}, np.ones(2))\n    return 0.5\n\n"
                     "def my_auroc(y, scores, tie=write()):\n    return tie\n",
}


THREADED = {  # the same from a library's worker thread, where no frame of the answer is on the stack
    "joblib-savetxt": "from joblib import Parallel, delayed\n\n"
                      "def my_auroc(y, scores):\n"
                      "    Parallel(n_jobs=2, backend='threading')(delayed(np.savetxt)({path!r}, np.zeros(1)) for _ in range(2))\n"
                      "    return 0.5\n",
    # a removal, which the file-size limit under the audit hook does not stop (without the guard's
    # rule for worker threads, the folder is gone)
    "thread_map-remove": "from tqdm.contrib.concurrent import thread_map\nfrom sklearn.datasets import clear_data_home\n\n"
                         "def my_auroc(y, scores):\n"
                         "    thread_map(clear_data_home, [{keep!r}])\n"
                         "    return 0.5\n",
}


@pytest.mark.parametrize("how", THREADED)
def test_the_answer_may_not_write_files_from_a_worker_thread(how, tmp_path):
    """A worker thread (joblib's threading backend) has no frame of the answer on its stack; the
    guard refuses its writes and removals all the same: nothing is written or removed."""
    path, keep = tmp_path / "written.py", tmp_path / "keep"
    keep.mkdir()
    (keep / "data.txt").write_text("x")
    source = THREADED[how].replace("{path!r}", repr(str(path))).replace("{keep!r}", repr(str(keep)))
    out = grading.isolated_check("check_auroc", "my_auroc", source, limit_s=120)
    assert not out["passed"], out["message"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep"] and (keep / "data.txt").exists()


def test_a_copy_of_the_reference_from_another_file_is_caught(tmp_path):
    """A copy of the reference's module loaded from another file (another path, the same code)
    runs the reference's bytecode under its name: the profile hook catches it by its code."""
    import importlib.util

    from helpers import checks, metrics

    copy = tmp_path / "elsewhere.py"
    copy.write_text(Path(metrics.__file__).read_text())
    spec = importlib.util.spec_from_file_location("metrics_elsewhere", copy)
    again = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(again)
    with pytest.raises(checks.CheckFailed, match="write it yourself"):
        checks.check_auroc(lambda y, s: again.auroc(y, s))


def test_an_earlier_exercise_named_only_in_a_comment_is_not_sent():
    """Only a use of the name in code sends the earlier exercise's cell: a comment or a docstring
    that mentions it does not (that cell's mistakes stay its own)."""
    assert grading.names("def my_mcc(y, p):\n    return my_auroc(y, p)\n", "my_auroc")
    assert not grading.names('def my_mcc(y, p):\n    """unlike my_auroc"""\n    # not my_auroc\n    return 0.0\n', "my_auroc")


def test_a_cell_ipython_cannot_transform_defines_nothing(tmp_path):
    """A scratch cell with an indentation error fails alone in the kernel; the grader reads the
    notebook all the same, and finds the answer in the cell that defines it."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("if True:\n        x = 1\n    y = 2"),
                nbformat.v4.new_code_cell("def my_auroc(y, scores):\n    return 0.5\n")]
    path = tmp_path / "01_data_and_model.ipynb"
    nbformat.write(nb, path)
    cells = grade.notebook_cells(path)
    assert [i for i, _ in cells] == [0, 1] and cells[0][1] == ""
    assert grade.answer_cell(cells, "my_auroc")[0] == 1


@pytest.mark.parametrize("how", WRITES)
def test_the_answer_may_not_write_files(how, tmp_path):
    """The guard refuses opening a file for writing while the answer's code runs (also when
    the answer catches the error): nothing is written, the answer scores 0."""
    path = tmp_path / "written.py"
    out = grading.isolated_check("check_auroc", "my_auroc", WRITES[how].replace("{path!r}", repr(str(path))),
                                 limit_s=120)
    assert not out["passed"] and "a file opened for writing" in out["message"], out["message"]
    assert not list(tmp_path.iterdir())


def test_grade_folder_counts_the_isolated_checks_run_before_any_otter_run(tmp_path, monkeypatch):
    """Every submission's isolated checks run before the first `otter run` (whose kernel runs the
    student's cells, with the instructor's rights); the gradebook counts them, and an Otter run
    that reports more (a forgery) or less is only named in the feedback."""
    events = []
    code = grading.test_cell("check_auroc", "my_auroc", hidden=False, limit_s=9)
    zip_path = _zip(tmp_path, {"ch01_auroc": [(code, False, 1), (code.replace("hidden=False", "hidden=True"), True, 1)]})
    folder = tmp_path / "dist" / "01_data_and_model" / "autograder"
    folder.mkdir(parents=True)
    zip_path.rename(folder / "01_data_and_model-autograder_1.zip")
    (tmp_path / "dist" / course_otter.SECRET_FILE).write_text("a-secret-0123\n")
    for who, body in (("alice", "return 0.5"), ("bob", "return 1.0")):
        (tmp_path / "subs" / who).mkdir(parents=True)
        _notebook([f"def my_auroc(y, s):\n    {body}\n"], tmp_path / "subs" / who)

    def isolated(cells, tests, *, secret):
        events.append(("checks", cells[0][1].split()[-1]))
        assert secret == "a-secret-0123"
        return {q: [{**c, "cells": [0], "passed": not c["hidden"] and "1.0" in cells[0][1], "message": "m"} for c in cs]
                for q, cs in tests.items()}

    def otter(notebook, zip_path, *, secret, timeout_s):
        events.append(("otter", nbformat.read(notebook, as_version=4).cells[0].source.split()[-1]))
        assert secret != "a-secret-0123" and len(secret) >= 8  # the kernel runs the student's code: a throwaway
        return {"scores": {"ch01_auroc": (2.0, 2.0)}, "output": "forged, printed by the kernel", "status": "graded"}

    monkeypatch.setattr(grade, "isolated_results", isolated)
    monkeypatch.setattr(grade, "run_otter", otter)
    rows = grade.grade_folder(tmp_path / "subs", tmp_path / "dist", out=tmp_path / "g.csv", feedback=tmp_path / "fb")
    assert events == [("checks", "0.5"), ("checks", "1.0"), ("otter", "0.5"), ("otter", "1.0")]
    assert [(r["ch01_auroc"], r["total"], r["max"], r["otter"]) for r in rows] == [(0.0, 0.0, 2.0, "2"), (1.0, 1.0, 2.0, "2")]
    text = (tmp_path / "fb" / "alice" / "01_data_and_model.txt").read_text()
    assert "Otter's run of the notebook gave 2 (graded), more than the isolated checks: not counted" in text
    # what the kernel printed reaches the instructor's file only, not the feedback handed out
    assert "printed by the kernel" not in text
    assert (tmp_path / "fb" / "alice" / "01_data_and_model.otter.txt").read_text().startswith("forged, printed")
