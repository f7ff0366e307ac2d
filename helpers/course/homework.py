"""Homework builds: the chapters with every exercise's solution replaced by a stub.

    python -m helpers.course.homework OUT_DIR [CHAPTER.ipynb ...]   (also: python -m helpers.homework)

Solutions live in code cells tagged `solution` (the book shows them collapsed). In the
student copy each such cell keeps the signatures and docstrings of the functions it
defines, their bodies become `raise NotImplementedError(...)`, and the tag becomes
`exercise`; every other cell is unchanged, so the check cells that follow fail with
"not written yet" until the student writes the functions.
"""

from __future__ import annotations

import argparse
import ast
import copy
import sys
from pathlib import Path

import nbformat

SOLUTION_TAG = "solution"
EXERCISE_TAG = "exercise"
ROOT = Path(__file__).resolve().parents[2]


def stub_source(source: str) -> str:
    """The stub of a solution cell: imports stay; each top-level function keeps its
    signature and docstring, and its body raises NotImplementedError; other statements
    are dropped."""
    tree = ast.parse(source)
    lines = source.splitlines()
    out = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out += lines[node.lineno - 1 : node.end_lineno]
            continue
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
        body = node.body[0]
        has_doc = isinstance(body, ast.Expr) and isinstance(body.value, ast.Constant) and isinstance(body.value.value, str)
        last = body.end_lineno if has_doc else body.lineno - 1
        indent = " " * body.col_offset
        out += lines[first - 1 : last]
        out.append(f'{indent}raise NotImplementedError("exercise: write `{node.name}`")')
        out.append("")
    return "\n".join(out).rstrip() + "\n" if out else "# your code here\n"


def strip_notebook(nb: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, int]:
    """A copy of `nb` with every solution cell stubbed; returns it and the number of stubs."""
    nb = copy.deepcopy(nb)
    count = 0
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.cell_type == "code" and SOLUTION_TAG in tags:
            cell.source = stub_source(cell.source)
            cell.metadata["tags"] = [t for t in tags if t not in (SOLUTION_TAG, "hide-cell", "hide-input")] + [EXERCISE_TAG]
            count += 1
    return nb, count


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Write student notebooks: solutions replaced by stubs.")
    p.add_argument("out", type=Path, help="output folder")
    p.add_argument("chapters", nargs="*", type=Path, help="notebooks (default: every chapter)")
    a = p.parse_args(argv if argv is not None else sys.argv[1:])
    paths = a.chapters or sorted((ROOT / "chapters").glob("*.ipynb"))
    a.out.mkdir(parents=True, exist_ok=True)
    for path in paths:
        nb, count = strip_notebook(nbformat.read(path, as_version=4))
        nbformat.write(nb, a.out / path.name)
        print(f"{path.name}: {count} exercise{'s' if count != 1 else ''} stubbed")


if __name__ == "__main__":
    main()
