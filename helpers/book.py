"""The book's plumbing: the Colab setup cell every chapter starts with.

The repository URL is configured in one place, `repository.url` in `_config.yml`; the
setup cell is generated from it. After changing the URL, rewrite the cells with

    python -m helpers.book sync

and `tests/test_book.py` checks that every chapter carries exactly this cell.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETUP_TAGS = ["remove-cell"]

_TEMPLATE = '''\
# Colab setup: install what Colab lacks (dm-haiku and this course's `helpers`).
# Anywhere else this cell does nothing: install the course with its README instead.
import sys

if "google.colab" in sys.modules:
    import subprocess

    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "dm-haiku",
         "idl-jax-helpers @ git+{url}"],
        check=True,
    )'''


def glue(name: str, value, display: bool = False) -> None:
    """`myst_nb.glue` when the book builds; a no-op where myst_nb is absent (Colab)."""
    try:
        from myst_nb import glue as _glue
    except ImportError:
        return
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()  # numpy scalars format like Python numbers in the text
    _glue(name, value, display=display)


def repository_url(config: Path = ROOT / "_config.yml") -> str:
    """`repository.url` from `_config.yml` (read without a YAML dependency)."""
    text = config.read_text()
    block = re.search(r"^repository:\n((?:[ \t]+.*\n?|\s*\n)+)", text, flags=re.M)
    if not block:
        raise ValueError(f"{config} has no `repository:` section")
    url = re.search(r"^\s+url:\s*(\S+)", block.group(1), flags=re.M)
    if not url:
        raise ValueError(f"{config}: `repository:` has no `url:`")
    return url.group(1).strip("\"'")


def setup_cell_source(url: str | None = None) -> str:
    return _TEMPLATE.format(url=url or repository_url())


def chapters(root: Path = ROOT) -> list[Path]:
    return sorted((root / "chapters").glob("*.ipynb"))


def setup_cell() -> dict:
    return {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {"tags": list(SETUP_TAGS)},
        "outputs": [],
        "source": setup_cell_source().splitlines(keepends=True),
    }


def sync(paths: list[Path] | None = None) -> list[Path]:
    """Makes the first code cell of every chapter the setup cell; returns changed files."""
    changed = []
    for path in paths or chapters():
        nb = json.loads(path.read_text())
        cells = nb["cells"]
        first = next((i for i, c in enumerate(cells) if c["cell_type"] == "code"), None)
        cell = setup_cell()
        if first is not None and "google.colab" in "".join(cells[first]["source"]):
            if cells[first]["source"] == cell["source"] and cells[first]["metadata"].get("tags") == SETUP_TAGS:
                continue
            cell["id"] = cells[first].get("id", "colab-setup")
            cells[first] = cell
        else:
            cell["id"] = "colab-setup"
            # after the title cell, before everything else
            cells.insert(1 if cells and cells[0]["cell_type"] == "markdown" else 0, cell)
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        changed.append(path)
    return changed


if __name__ == "__main__":
    if sys.argv[1:] != ["sync"]:
        sys.exit("usage: python -m helpers.book sync")
    for p in sync():
        print("updated", p)
