"""Grade a folder of submitted notebooks: every test of the chapter's Otter autograder is
run by this process itself on the answer cells read from the notebook file; `otter run` is
reported beside it.

    python -m helpers.course.grade SUBMISSIONS/ --autograders DIST/ [--out gradebook.csv]
        [--feedback FEEDBACK/] [--timeout-s 1800] [--secret-file DIST/grading_secret.txt]

Every `*.ipynb` under SUBMISSIONS (e.g. `alice/01_data_and_model.ipynb`) is graded with the
autograder of the chapter its file name names (`DIST/<chapter>/autograder/*.zip`, written by
`python -m helpers.course.otter DIST`):

1. The isolated checks, which count. This process never runs the student's code: for each
   test of the zip (read back with `grading.parse_test_cell`), the answer cell is read from the
   notebook file (`answer_cell`: the last code cell `otter run` executes that defines the
   exercise's function at top level), preceded by the cells of the earlier exercises'
   functions it names, as the test cell does, and sent to `grading.isolated_check` (a fresh
   `python -I` process, `helpers.course.sandbox`, which refuses writing files) with the same
   seed as Otter's test: the book's cases for the public test, for the hidden one the seed
   drawn from that source and the grading secret. A question scores the points of the tests
   whose isolated check passed.
2. `otter run` in a fresh process, as Otter grades (the student-facing `grader.check` runs the
   same tests): its total in the gradebook's `otter` column, its report in the instructor's
   `.otter.txt` file, never counted.
   It executes the whole notebook, so the student's own cells run in the process that then
   runs the test cells, and can forge what it reports (replace `subprocess.run`,
   `secrets.token_hex` or `linecache` there); they also run with the instructor's rights (they
   can write files, such as the course's code that later checks import), so every submission's
   isolated checks run before the first `otter run`. A question where the two differ says so
   in the feedback.

Writes the gradebook (one row per submission, one column per exercise, then total, maximum and
Otter's total) and one feedback file per submission (each test's isolated result with the
check's sentence and the cells it graded; Otter's report goes to `<submission>.otter.txt` beside
it, for the instructor only). `--timeout-s` stops `otter run`;
each isolated check stops at its own limit (`--limit-s` of the build, read from the test). The
grading secret (`DIST/grading_secret.txt`, written by the build) stays in this process: each
check's process gets the seed drawn from it, not the secret, and `otter run`, whose kernel runs
the student's code, gets a throwaway secret (`COURSE_GRADING_SALT`), so its hidden cases are
other draws than the counted ones."""

from __future__ import annotations

import argparse
import ast
import csv
import doctest
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path


def autograder_zip(autograders: Path, chapter: str) -> Path:
    """The newest autograder zip of `chapter` under `autograders`."""
    zips = sorted((autograders / chapter / "autograder").glob("*-autograder_*.zip"))
    if not zips:
        raise ValueError(f"autograders: no autograder for {chapter} in {autograders / chapter / 'autograder'} "
                         "(build it with python -m helpers.course.otter)")
    return zips[-1]


def read_secret(path: Path) -> str:
    """The grading secret written by `python -m helpers.course.otter` (`DIST/grading_secret.txt`)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"secret_file: no grading secret at {path} (build the assignments first, or pass --secret-file)")
    secret = path.read_text().strip()
    if len(secret) < 8:
        raise ValueError(f"secret_file: the secret in {path} is shorter than 8 characters")
    return secret


OTTER_IGNORE = "otter_ignore"  # the tag of cells `otter run` skips (otter.execute.preprocessor.IGNORE_CELL_TAG)


def autograder_tests(zip_path: Path) -> dict[str, list[dict]]:
    """The tests of an autograder zip: question name -> its cases, each the arguments of its
    `run_check` (`grading.parse_test_cell`: check, function, hidden, limit_s, uses) and its
    points, read from the zip's `tests/*.py` (Otter's OK format)."""
    from helpers.course.grading import parse_test_cell

    out = {}
    try:
        archive = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as e:
        raise ValueError(f"autograders: {zip_path} is not a readable zip ({e}); rebuild it with "
                         "python -m helpers.course.otter") from None
    with archive as z:
        for name in sorted(n for n in z.namelist() if n.startswith("tests/") and n.endswith(".py")):
            where = f"autograders: the test {name} of {zip_path}"
            try:
                tree = ast.parse(z.read(name).decode())
                value = next(n.value for n in tree.body if isinstance(n, ast.Assign)
                             and any(isinstance(t, ast.Name) and t.id == "test" for t in n.targets))
                test = ast.literal_eval(value)
                out[test["name"]] = [
                    {**parse_test_cell("".join(e.source for e in doctest.DocTestParser().get_examples(c["code"]))),
                     "points": float(c["points"])}  # the build gives every test its points (1)
                    for suite in test["suites"] for c in suite["cases"]]
            except (SyntaxError, StopIteration, ValueError, KeyError, TypeError, AttributeError) as e:
                raise ValueError(f"{where} is not an Otter test of this course ({type(e).__name__}: {e}); "
                                 "rebuild it with python -m helpers.course.otter") from None
    if not out:
        raise ValueError(f"autograders: {zip_path} has no tests (rebuild it with python -m helpers.course.otter)")
    return out


MAX_CELL_CHARS = 50_000  # a longer cell is read as defining nothing (an answer cell is a few kB)


def notebook_cells(notebook: Path) -> list[tuple[int, str]]:
    """The code cells `otter run` executes (not those tagged `otter_ignore`), as (index in the
    notebook, source as IPython runs it: magics become calls, as in the kernel's `linecache`)."""
    import nbformat

    try:
        from IPython.core.inputtransformer2 import TransformerManager

        transform = TransformerManager().transform_cell
    except ImportError:  # IPython comes with otter-grader; without it, magics stay as written
        def transform(text: str) -> str:
            return text
    out = []
    for i, cell in enumerate(nbformat.read(notebook, as_version=4).cells):
        meta = cell.get("metadata", {})
        if cell.get("cell_type") != "code" or OTTER_IGNORE in meta.get("tags", []) or meta.get("otter", {}).get("ignore"):
            continue
        text = cell.get("source", "")
        if len(text) > MAX_CELL_CHARS:  # IPython's magics pass re-reads a cell per magic: bounded work only
            out.append((i, ""))
            continue
        try:
            out.append((i, transform(text)))
        except Exception:  # noqa: BLE001  (the kernel fails this one cell, e.g. an IndentationError: it defines nothing)
            out.append((i, ""))
    return out


def _defines(source: str, function: str) -> bool | None:
    """Whether a cell binds `function` at top level (`def`, `class`, `import ... as`); None
    for a cell that does not parse (the kernel runs none of it) but has a line `def <function>`."""
    from helpers.course.grading import UNREADABLE

    try:
        tree = ast.parse(source)
    except UNREADABLE:  # the kernel runs none of such a cell
        # [ \t]*, not \s*: with re.M, \s* also eats newlines and the search turns quadratic on long cells
        return None if re.search(rf"^[ \t]*(async[ \t]+)?def[ \t]+{re.escape(function)}\b", source, re.M) else False
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == function:
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                (a.asname or a.name.split(".")[0]) == function for a in node.names):
            return True
    return False


def answer_cell(cells: list[tuple[int, str]], function: str) -> tuple[int, str] | None:
    """The cell that defines `function` as the notebook leaves it when run in order: the last
    of `cells` (see `notebook_cells`) that binds it at top level. A cell that does not parse
    binds nothing (the kernel runs none of it); when only such cells try (`def <function>`),
    the last of them, whose check then says that it does not parse. None when no cell does."""
    defines = [(i, text, _defines(text, function)) for i, text in cells]
    found = [(i, text) for i, text, d in defines if d] or [(i, text) for i, text, d in defines if d is None]
    return found[-1] if found else None


def isolated_results(cells: list[tuple[int, str]], tests: dict[str, list[dict]], *, secret: str) -> dict[str, list[dict]]:
    """Every case of `tests` (see `autograder_tests`) run by `grading.isolated_check` on the
    answer cells of `cells`, with the same source and seed as Otter's test cell would use:
    question -> [{**case, "passed", "message", "cells"}] (`cells`: the notebook indices graded)."""
    from helpers.course.grading import UNREADABLE, isolated_check, names, with_earlier
    from helpers.course.sandbox import source_seed

    out = {}
    for question, cases in tests.items():
        out[question] = []
        for case in cases:
            check, function = case["check"], case["function"]
            answer = answer_cell(cells, function)
            if answer is None:
                out[question].append({**case, "cells": [], "passed": False, "message": (
                    f"{check}: no cell of the notebook defines `{function}` (write `def {function}(...)` in its answer cell)")})
                continue
            earlier = [e for e in (answer_cell(cells, n) for n in case["uses"] if names(answer[1], n)) if e is not None]
            source = with_earlier(answer[1], [text for _, text in earlier])
            used = sorted({i for i, _ in earlier} | {answer[0]})
            try:
                seed = source_seed(source, secret) if case["hidden"] else None
            except UNREADABLE as e:  # this answer only, not the notebook
                out[question].append({**case, "cells": used, "passed": False,
                                      "message": f"{check}: your cell could not be read ({type(e).__name__}: {str(e)[:200]})"})
                continue
            result = isolated_check(check, function, source, seed=seed, limit_s=case["limit_s"])
            out[question].append({**case, "cells": used, **result})
    return out


def run_otter(notebook: Path, zip_path: Path, *, secret: str, timeout_s: int = 1800) -> dict:
    """Run `otter run` on one notebook in a fresh process, with `secret` in its environment
    (`grade_one` and `grade_folder` pass a throwaway: the kernel runs the student's code);
    returns {"scores": {question: (score, max)}, "output": Otter's report,
    "status": "graded" | "timeout" | "error"}."""
    from helpers.course.grading import ROOT, SALT_ENV

    notebook, zip_path = Path(notebook).resolve(), Path(zip_path).resolve()  # otter runs in a temporary folder
    env = {**os.environ, SALT_ENV: secret, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory(prefix="grade_") as tmp:
        tmp = Path(tmp)
        sub = tmp / notebook.name
        shutil.copy(notebook, sub)
        (tmp / "out").mkdir()
        cmd = [sys.executable, "-m", "otter", "run", "-a", str(zip_path), "-o", str(tmp / "out"), str(sub)]
        try:
            proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=timeout_s, env=env)
        except subprocess.TimeoutExpired:
            return {"scores": {}, "output": f"otter run stopped after {timeout_s} s", "status": "timeout"}
        results = tmp / "out" / "results.json"
        if not results.exists():
            tail = (proc.stdout + proc.stderr)[-3000:]
            return {"scores": {}, "output": f"otter run produced no results:\n{tail}", "status": "error"}
        tests = json.loads(results.read_text())["tests"]
    scores, lines = {}, []
    for t in tests:
        if "score" in t:
            scores[t["name"]] = (float(t["score"]), float(t["max_score"]))
            lines.append(f"### {t['name']}: {t['score']:g} / {t['max_score']:g}")
        else:
            lines.append(f"### {t['name']}")
        lines += [t.get("output", "").strip(), ""]
    return {"scores": scores, "output": "\n".join(lines), "status": "graded"}


def check_one(notebook: Path, tests: dict[str, list[dict]], *, secret: str) -> dict:
    """The isolated checks of one notebook (`isolated_results` on `notebook_cells`): {"results":
    question -> its cases' results, "unreadable": why the file could not be read, or None}."""
    try:
        cells, unreadable = notebook_cells(notebook), None
    except Exception as e:  # noqa: BLE001  (a file nbformat cannot read: every test fails, with the reason)
        cells, unreadable = [], f"the notebook could not be read: {type(e).__name__}: {e}"
    results = isolated_results(cells, tests, secret=secret)
    if unreadable:
        results = {q: [{**r, "message": unreadable} for r in rs] for q, rs in results.items()}
    return {"results": results, "unreadable": unreadable}


def report(checked: dict, otter: dict) -> dict:
    """The grade of one notebook from its isolated checks (`check_one`); Otter's run (`run_otter`)
    is reported beside it, never counted. Returns {"scores": {question: (score, max)},
    "feedback": text, "status": "graded" | "error", "otter": Otter's total, or its status}."""
    scores, lines = {}, ["Each test names the notebook's cells it graded (counted from 1, every cell included).", ""]
    for question, results in checked["results"].items():
        full = sum((r["points"] for r in results), 0.0)
        scores[question] = (sum((r["points"] for r in results if r["passed"]), 0.0), full)
        lines.append(f"## {question}: {scores[question][0]:g} / {full:g}")
        for r in results:
            what = "hidden test (other cases)" if r["hidden"] else "public test (the book's cases)"
            where = f" [cell{'s' * (len(r['cells']) > 1)} {', '.join(str(i + 1) for i in r['cells'])}]" if r["cells"] else ""
            lines.append(f"- {what}: {'passed' if r['passed'] else 'failed'}{where}: {r['message']}")
        by_otter = otter["scores"].get(question, (0.0, full))[0]
        if by_otter != scores[question][0]:
            lines.append(f"- Otter's run of the notebook gave {by_otter:g} ({otter['status']}), "
                         + ("more than the isolated checks: not counted (code in the notebook's kernel can forge "
                            "Otter's result)" if by_otter > scores[question][0] else
                            "less than the isolated checks: not counted (its hidden cases are other draws; "
                            "the instructor has its report)"))
        lines.append("")
    # Otter's own report is the kernel's output, which the student's code controls (it could print a file
    # it read): it goes to the instructor's file, not into the feedback
    lines += [f"Otter's run of the notebook (its own kernel; reported, not counted): {otter['status']}."]
    total = sum(s for s, _ in otter["scores"].values())
    return {"scores": scores, "feedback": "\n".join(lines), "status": "error" if checked["unreadable"] else "graded",
            "otter_report": otter.get("output", ""),
            "otter": f"{total:g}" if otter["status"] == "graded" else otter["status"]}


def grade_one(notebook: Path, zip_path: Path, *, secret: str, timeout_s: int = 1800) -> dict:
    """Grade one notebook (see the module's docstring): its isolated checks (`check_one`) first,
    before any of its code runs outside a check's process, then `run_otter`; see `report`."""
    checked = check_one(notebook, autograder_tests(zip_path), secret=secret)
    return report(checked, run_otter(notebook, zip_path, secret=secrets.token_hex(16), timeout_s=timeout_s))


def grade_folder(submissions: Path, autograders: Path, *, out: Path, feedback: Path, timeout_s: int = 1800,
                 secret_file: Path | None = None) -> list[dict]:
    """Grade every notebook under `submissions`; writes the gradebook CSV `out` and a
    feedback file per submission under `feedback`; returns the rows. The secret is read from
    `secret_file` (default `autograders/grading_secret.txt`). Every submission's isolated
    checks run first, then `otter run` on each: a notebook's kernel (which can write files as
    the instructor) runs only after every check that counts has run."""
    from helpers.course.otter import SECRET_FILE

    # absolute before anything runs elsewhere: `otter run` works in a temporary folder, where the
    # README's relative paths (`submissions/`, `dist/`) would name nothing
    submissions, autograders = Path(submissions).resolve(), Path(autograders).resolve()
    out, feedback = Path(out).resolve(), Path(feedback).resolve()
    secret = read_secret(Path(secret_file).resolve() if secret_file else autograders / SECRET_FILE)
    if not submissions.is_dir():
        raise ValueError(f"submissions: {submissions} is not a folder")
    notebooks = sorted(p for p in submissions.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if not notebooks:
        raise ValueError(f"submissions: no notebooks under {submissions}")
    checked = []
    for nb in notebooks:  # 1. the isolated checks of every submission
        try:
            zip_path = autograder_zip(autograders, nb.stem)
            checked.append((nb, zip_path, check_one(nb, autograder_tests(zip_path), secret=secret)))
        except ValueError as e:
            checked.append((nb, None, str(e)))
        except Exception as e:  # noqa: BLE001  (one hostile or broken notebook must not stop the others)
            checked.append((nb, None, f"the notebook could not be graded ({type(e).__name__}: {str(e)[:300]})"))
        print(f"{nb.relative_to(submissions).with_suffix('')}: checked", flush=True)
    rows, columns = [], []
    for nb, zip_path, result in checked:  # 2. otter run on each, reported beside the checks
        ident = str(nb.relative_to(submissions).with_suffix(""))
        if zip_path is None:
            result = {"scores": {}, "feedback": result, "status": "error", "otter": ""}
        else:
            # Otter's result is not counted, so its kernel (the student's code) gets a throwaway secret,
            # never the real one: its hidden cases are other draws than the counted ones
            result = report(result, run_otter(nb, zip_path, secret=secrets.token_hex(16), timeout_s=timeout_s))
        row = {"submission": ident, "chapter": nb.stem, "status": result["status"]}
        for name, (score, _) in result["scores"].items():
            row[name] = score
            if name not in columns:
                columns.append(name)
        row["total"] = sum(s for s, _ in result["scores"].values())
        row["max"] = sum(m for _, m in result["scores"].values())
        row["otter"] = result["otter"]
        rows.append(row)
        path = Path(feedback) / f"{ident}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {ident}: {row['total']:g} / {row['max']:g} ({result['status']})\n\n{result['feedback']}\n")
        if result.get("otter_report"):  # for the instructor only: the student's kernel wrote it
            path.with_suffix(".otter.txt").write_text(result["otter_report"] + "\n")
        print(f"{ident}: {row['total']:g} / {row['max']:g} ({result['status']}; otter run: {row['otter']})", flush=True)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["submission", "chapter", "status", *columns, "total", "max", "otter"],
                                restval="")
        writer.writeheader()
        writer.writerows(rows)
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Grade a folder of submitted notebooks with the Otter autograders.")
    p.add_argument("submissions", type=Path, help="folder of submitted notebooks (searched recursively)")
    p.add_argument("--autograders", type=Path, required=True, help="output folder of python -m helpers.course.otter")
    p.add_argument("--out", type=Path, default=Path("gradebook.csv"), help="gradebook CSV (default gradebook.csv)")
    p.add_argument("--feedback", type=Path, default=Path("feedback"), help="folder for one feedback file per submission")
    p.add_argument("--timeout-s", type=int, default=1800,
                   help="time limit of otter run per submission, seconds (each check also stops at the build's --limit-s)")
    p.add_argument("--secret-file", type=Path, default=None,
                   help="the grading secret (default: AUTOGRADERS/grading_secret.txt, written by the build)")
    a = p.parse_args(argv if argv is not None else sys.argv[1:])
    grade_folder(a.submissions, a.autograders, out=a.out, feedback=a.feedback, timeout_s=a.timeout_s,
                 secret_file=a.secret_file)


if __name__ == "__main__":
    main()
