"""Homework builds: stubs keep signatures, docstrings and imports; a stripped chapter runs
up to its exercises, whose checks then fail with "not written yet"."""

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from helpers import homework

SOLUTION = '''import math


def area(r):
    """Area of a circle of radius r."""
    return math.pi * r**2


radius = 2.0


def helper(x):
    return x
'''


def test_stub_keeps_imports_signatures_and_docstrings():
    stub = homework.stub_source(SOLUTION)
    assert stub.startswith("import math\n")
    assert 'def area(r):\n    """Area of a circle of radius r."""\n    raise NotImplementedError("exercise: write `area`")' in stub
    assert 'def helper(x):\n    raise NotImplementedError("exercise: write `helper`")' in stub
    assert "radius = 2.0" not in stub and "math.pi" not in stub
    namespace = {}
    exec(stub, namespace)
    with pytest.raises(NotImplementedError, match="area"):
        namespace["area"](1.0)
    assert homework.stub_source("x = 1\n") == "# your code here\n"


def test_strip_notebook_replaces_only_solution_cells():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("a = 1"), nbformat.v4.new_code_cell(SOLUTION), nbformat.v4.new_markdown_cell("text")]
    nb.cells[1].metadata["tags"] = ["solution", "hide-cell"]
    out, count = homework.strip_notebook(nb)
    assert count == 1 and out.cells[0].source == "a = 1" and out.cells[2].source == "text"
    assert out.cells[1].metadata["tags"] == ["exercise"] and "NotImplementedError" in out.cells[1].source
    assert nb.cells[1].source == SOLUTION  # the original is untouched


@pytest.mark.slow
def test_stripped_chapter_runs_up_to_its_exercise(tmp_path):
    # chapter 10: the cheapest run up to its first exercise (25 s on 2026-12-03; chapter 7's took 44 s)
    homework.main([str(tmp_path), str(homework.ROOT / "chapters" / "10_counterfactuals.ipynb")])
    nb = nbformat.read(tmp_path / "10_counterfactuals.ipynb", as_version=4)
    exercise = next(i for i, c in enumerate(nb.cells) if "exercise" in c.metadata.get("tags", []))
    check = next(i for i, c in enumerate(nb.cells) if i > exercise and ".check_" in c.source)
    nb.cells = nb.cells[: check + 1]
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(homework.ROOT / "chapters")}})
    with pytest.raises(CellExecutionError, match="not written yet") as err:
        client.execute()
    # every cell before the check ran; the check cell is the one that failed
    ran = [c for c in nb.cells[:check] if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in ran)
    assert "CheckFailed" in str(err.value)


def _exercises(nb):
    """(stub source, check source) of every exercise of a stripped notebook."""
    out = []
    for i, cell in enumerate(nb.cells):
        if "exercise" in cell.metadata.get("tags", []):
            check = next(c for c in nb.cells[i + 1 :] if c.cell_type == "code" and ".check_" in c.source)
            out.append((cell.source, check.source))
    return out


@pytest.mark.parametrize("path", sorted((homework.ROOT / "chapters").glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.stem)
def test_every_chapter_has_two_to_four_exercises_whose_checks_fail_on_the_stubs(path):
    # (The solutions pass their checks in the chapters themselves, which tests/test_chapters.py runs.)
    import jax
    import jax.numpy as jnp
    import numpy as np

    from helpers import checks

    nb, count = homework.strip_notebook(nbformat.read(path, as_version=4))
    assert 2 <= count <= 4, f"{path.name} has {count} exercises"
    exercises = _exercises(nb)
    assert len(exercises) == count
    namespace = {"np": np, "jnp": jnp, "jax": jax}
    for stub, check in exercises:
        exec(stub, namespace)  # the student's starting point: signatures and docstrings
        with pytest.raises(checks.CheckFailed, match="not written yet"):
            exec(check, namespace)
