"""Otter-Grader assignments made from the book: one per chapter, written from the chapters'
tags (see `helpers.course.exercises`), so nothing is written twice.

    python -m helpers.course.otter OUT_DIR [CHAPTER.ipynb ...] [--limit-s 120]

writes `OUT_DIR/masters/<chapter>.ipynb` (Otter's "assign" format) and runs `otter assign`
on each, giving `OUT_DIR/<chapter>/student/<chapter>.ipynb` (hand this out) and
`OUT_DIR/<chapter>/autograder/` with `<chapter>-autograder_*.zip` (grade with it:
`python -m helpers.course.grade`, or upload it to Gradescope).

Each exercise becomes one question: the solution cell becomes a solution block (the student
sees the signature and docstring, as in `helpers.course.homework`), and its check becomes two
tests of one point each: a public one with the book's cases (`grader.check` shows its sentence
in the student's copy) and a hidden one whose cases are seeded by the graded source and a
grading secret. Both run the check in a fresh process (`helpers.course.grading`). The secret
is written to `OUT_DIR/grading_secret.txt` (kept by the instructor, never in the zip) and
passed to the tests only at grading time by `python -m helpers.course.grade`."""

from __future__ import annotations

import argparse
import ast
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import nbformat

from helpers.course.exercises import ROOT, Exercise, exercises
from helpers.course.grading import test_cell

SECRET_FILE = "grading_secret.txt"

SETUP = "import jax\nimport jax.numpy as jnp\nimport numpy as np\n"
_STALE = ("Each solution is collapsed", "writes student copies without them")


def _raw(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_raw_cell(text)


def _prompt(cells: list, ex: Exercise, previous_end: int) -> str:
    """The exercise's text: the markdown cells between the previous exercise's check and
    this solution, without the book's sentences about collapsed solutions."""
    heads = [i for i, c in enumerate(cells[: ex.solution_cell]) if c.cell_type == "markdown" and "## Exercises" in c.source]
    start = max(previous_end + 1, heads[-1] if heads else ex.solution_cell - 1)
    parts = []
    for cell in cells[start : ex.solution_cell]:
        if cell.cell_type != "markdown" or "remove-cell" in cell.metadata.get("tags", []):
            continue
        lines = [ln for ln in cell.source.splitlines() if not any(s in ln for s in _STALE) and ln.strip() != "## Exercises"]
        parts.append("\n".join(lines).strip())
    return "\n\n".join(p for p in parts if p)


def solution_cell(source: str) -> str:
    """The solution cell for Otter: each top-level function keeps its signature and
    docstring; its body becomes a `# BEGIN SOLUTION NO PROMPT` block followed by the
    student's `raise NotImplementedError` prompt (as `helpers.course.homework.stub_source`);
    imports stay; other statements are solution-only."""
    tree = ast.parse(source)
    lines = source.splitlines()
    out = []
    for node in tree.body:
        chunk = lines[(node.decorator_list[0].lineno if getattr(node, "decorator_list", None) else node.lineno) - 1 : node.end_lineno]
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out += chunk
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body[0]
            has_doc = isinstance(body, ast.Expr) and isinstance(body.value, ast.Constant) and isinstance(body.value.value, str)
            first_body = node.body[1] if has_doc and len(node.body) > 1 else body
            head = (node.decorator_list[0].lineno if node.decorator_list else node.lineno)
            split = first_body.lineno - 1 if not (has_doc and len(node.body) == 1) else body.end_lineno
            indent = " " * body.col_offset
            out += lines[head - 1 : split]
            out += [f"{indent}# BEGIN SOLUTION NO PROMPT", *lines[split : node.end_lineno], f"{indent}# END SOLUTION",
                    f'{indent}""" # BEGIN PROMPT',
                    f'{indent}raise NotImplementedError("exercise: write `{node.name}`")',
                    f'{indent}""" # END PROMPT']
        else:
            out += ["# BEGIN SOLUTION NO PROMPT", *chunk, "# END SOLUTION"]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _test(ex: Exercise, *, hidden: bool, limit_s: int, uses: tuple = ()) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(
        f'""" # BEGIN TEST CONFIG\nhidden: {"true" if hidden else "false"}\npoints: 1\n""" # END TEST CONFIG\n'
        + test_cell(ex.check, ex.function, hidden=hidden, limit_s=limit_s, uses=uses))


def master_notebook(path: str | Path, *, limit_s: int = 120) -> nbformat.NotebookNode:
    """The Otter "assign" master notebook of one chapter's exercises."""
    path = Path(path)
    cells = nbformat.read(path, as_version=4).cells
    exs = exercises(path)
    if not exs:
        raise ValueError(f"path: {path.name} has no exercises (code cells tagged 'solution' followed by a check)")
    title = next((c.source.splitlines()[0].lstrip("# ") for c in cells if c.cell_type == "markdown"), path.stem)
    config = {"name": path.stem, "init_cell": True, "check_all_cell": False, "export_cell": False,
              "run_tests": False, "show_question_points": True}
    out = [_raw("# ASSIGNMENT CONFIG\n" + "\n".join(f"{k}: {json.dumps(v)}" for k, v in config.items())),
           nbformat.v4.new_markdown_cell(f"# Homework: {title}\n\nWrite each function where it says `...`; "
                                         "run the `grader.check` cell after it to see whether the book's cases pass. "
                                         "Your grade also counts hidden cases of the same kind. Each check runs your "
                                         "answer cell alone, in a fresh Python process: only its imports and its "
                                         "`def`/`class` statements are kept (put constants inside the function), and "
                                         "it may not use `sys`, `os`, `inspect`, `getattr`, `eval` or names that "
                                         "start with an underscore."),
           nbformat.v4.new_code_cell(SETUP)]
    previous_end = -1
    for k, ex in enumerate(exs):
        uses = tuple(e.function for e in exs[:k] if e.function != ex.function)  # an answer may call earlier ones
        out += [_raw(f"# BEGIN QUESTION\nname: {ex.name}"),
                nbformat.v4.new_markdown_cell(_prompt(cells, ex, previous_end) or f"Write `{ex.function}`."),
                _raw("# BEGIN SOLUTION"), nbformat.v4.new_code_cell(solution_cell(ex.solution)), _raw("# END SOLUTION"),
                _raw("# BEGIN TESTS"),
                _test(ex, hidden=False, limit_s=limit_s, uses=uses),
                _test(ex, hidden=True, limit_s=limit_s, uses=uses),
                _raw("# END TESTS"), _raw("# END QUESTION")]
        previous_end = ex.check_cell
    nb = nbformat.v4.new_notebook(cells=out)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def build(out: str | Path, chapters: list[Path], *, limit_s: int = 120) -> list[Path]:
    """Write the master notebooks and run `otter assign` on each; returns the autograder
    folders (`OUT/<chapter>/autograder`). Writes a fresh grading secret to
    `OUT/grading_secret.txt` unless one is there (keep it: the hidden cases depend on it)."""
    out = Path(out).resolve()  # `otter assign` runs inside it, where a relative OUT would name nothing
    (out / "masters").mkdir(parents=True, exist_ok=True)
    if not (out / SECRET_FILE).exists():
        # created owner-only (0600), never readable by others even for a moment
        fd = os.open(out / SECRET_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(16) + "\n")
    done = []
    for path in chapters:
        master = out / "masters" / f"{path.stem}.ipynb"
        nbformat.write(master_notebook(path, limit_s=limit_s), master)
        dist = out / path.stem
        subprocess.run([sys.executable, "-m", "otter", "assign", "--no-pdfs", str(master), str(dist)],
                       check=True, cwd=out)
        done.append(dist / "autograder")
    return done


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Otter-Grader assignments (student copy and autograder) from the chapters.")
    p.add_argument("out", type=Path, help="output folder")
    p.add_argument("chapters", nargs="*", type=Path, help="notebooks (default: every chapter)")
    p.add_argument("--limit-s", type=int, default=120, help="time limit per exercise check, seconds")
    a = p.parse_args(argv if argv is not None else sys.argv[1:])
    paths = a.chapters or [p for p in sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb")) if exercises(p)]
    for folder in build(a.out, paths, limit_s=a.limit_s):
        print(f"{folder.parent.name}: student copy in {folder.parent / 'student'}, autograder in {folder}")


if __name__ == "__main__":
    main()
