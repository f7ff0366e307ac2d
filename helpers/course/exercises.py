"""The exercises of the book, read from the chapters' tags: each is a code cell tagged
`solution` followed (before the next solution) by a check cell that calls
`checks.check_<name>(my_function)`. The book stays the single source: the homework builder,
the grader and the tests all read the exercises from here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
SOLUTION_TAG = "solution"
_CHECK_CALL = re.compile(r"\b\w+\.(check_\w+)\(\s*(\w+)\s*\)")  # checks.check_x(my_x), ch15.check_x(my_x)


@dataclass(frozen=True)
class Exercise:
    """One exercise: where it is, its solution source, and the check that grades it."""

    chapter: str  # the notebook's stem, e.g. "03_integrated_gradients"
    solution_cell: int  # index of the solution cell
    check_cell: int  # index of the cell that calls the check
    solution: str  # the solution cell's source
    check: str  # the check's name, e.g. "check_integrated_gradients"
    function: str  # the student's function, e.g. "my_integrated_gradients"

    @property
    def name(self) -> str:
        """A short unique name: the chapter number and the check, e.g. "ch03_integrated_gradients"."""
        return f"ch{self.chapter[:2]}_{self.check.removeprefix('check_')}"


def exercises(path: str | Path) -> list[Exercise]:
    """The exercises of one chapter notebook, in order."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"path: no notebook at {path}")
    cells = nbformat.read(path, as_version=4).cells
    out = []
    for i, cell in enumerate(cells):
        if cell.cell_type != "code" or SOLUTION_TAG not in cell.metadata.get("tags", []):
            continue
        for j in range(i + 1, len(cells)):
            c = cells[j]
            if c.cell_type == "code" and SOLUTION_TAG in c.metadata.get("tags", []):
                break
            m = _CHECK_CALL.search(c.source) if c.cell_type == "code" else None
            if m:
                out.append(Exercise(path.stem, i, j, cell.source, m.group(1), m.group(2)))
                break
    return out


def all_exercises(chapters: list[Path] | None = None) -> list[Exercise]:
    """Every exercise of the given chapters (default: every chapter of the book)."""
    paths = chapters or sorted((ROOT / "chapters").glob("*.ipynb"))
    return [e for p in paths for e in exercises(p)]


def solutions(path: str | Path) -> dict:
    """A namespace with the chapter's solution cells run in order (with `np`, `jnp`, `jax`
    imported, as in the chapters): the reference answers, for tests and for grading tests."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    namespace = {"np": np, "jnp": jnp, "jax": jax}
    for e in exercises(path):
        exec(compile(e.solution, f"<{e.chapter} solution {e.solution_cell}>", "exec"), namespace)
    return namespace
