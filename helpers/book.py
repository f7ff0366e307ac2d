"""The book's plumbing: the Colab setup cell every chapter starts with, and one execution
of each chapter shared by the tests and the book build.

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
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parent.parent
SETUP_TAGS = ["remove-cell"]

# dm-haiku releases known to work with a range of jax releases: `(lowest jax, dm-haiku)`; the
# cell takes the row with the highest lowest-jax not above Colab's jax. Measured on Python 3.11:
# dm-haiku 0.0.15 and 0.0.17 import and apply a Conv1D + Linear network on jax 0.8.0 and on
# jax 0.10.2 (0.0.16: on 0.10.2; on 0.8.0 it imports); 0.0.13 and 0.0.14 fail to import on jax 0.10.2 and 0.0.14 on jax 0.8.0
# (`jax.lib.xla_extension`). CI runs dm-haiku 0.0.17 with jax 0.10.2 (requirements.txt) and
# the floors, 0.0.15 with 0.8.0 (`helpers.floors`). Issue 18 reports that 0.0.17 fails to
# import on jax < 0.4.36. Older jax than the floor of pyproject.toml is refused: the course
# itself needs it (`jax.enable_x64`, chapter 9).
HAIKU_FOR_JAX = [("0.8.0", "0.0.17")]

_TEMPLATE = """\
# Colab setup: install what Colab lacks (dm-haiku and this course's `helpers` {version}).
# Anywhere else this cell does nothing: install the course with its README instead.
import sys

if "google.colab" in sys.modules:
    import re
    import subprocess
    from importlib.metadata import version

    def release(v):  # "0.8.1" -> (0, 8, 1); "0.4.36.dev20241120" -> (0, 4, 36)
        return tuple(int(p) for p in re.findall(r"\\d+", v)[:3])

    jax_version = version("jax")
    if release(jax_version) < release("{jax_floor}"):
        raise RuntimeError(
            f"This book needs jax >= {jax_floor}; this Colab has jax {{jax_version}}. Run "
            "`!pip install -U 'jax>={jax_floor}'` (on a GPU runtime: 'jax[cuda12]>={jax_floor}'), "
            "then Runtime > Restart session, and run this cell again.")
    haiku = next(h for low, h in {table!r} if release(jax_version) >= release(low))
    command = [sys.executable, "-m", "pip", "install", "-q", f"jax=={{jax_version}}",
               f"dm-haiku=={{haiku}}", "idl-jax-helpers @ git+{url}@v{version}"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stdout, done.stderr, sep="\\n")
        raise RuntimeError(f"pip failed (exit {{done.returncode}}), its output is above: {{' '.join(command[3:])}}")"""


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


def book_version(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """`[project] version` of `pyproject.toml`: releases are tagged `v<version>`."""
    import tomllib

    return tomllib.loads(Path(pyproject).read_text())["project"]["version"]


def jax_floor(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """The lowest jax `pyproject.toml` allows."""
    from helpers.floors import declared, floor

    floors = dict(map(floor, declared(pyproject)))
    return floors["jax"]


def setup_cell_source(url: str | None = None) -> str:
    """The Colab cell: stops with what to do when Colab's jax is older than the floor, else
    installs the dm-haiku of `HAIKU_FOR_JAX` for it (keeping Colab's jax) and `helpers` at
    the tag of this version, printing pip's output when pip fails."""
    low = jax_floor()
    table = sorted(HAIKU_FOR_JAX, key=lambda row: _release(row[0]), reverse=True)
    if not table or table[-1][0] != low:
        raise ValueError(f"HAIKU_FOR_JAX must start at the jax floor {low}, has {HAIKU_FOR_JAX}")
    return _TEMPLATE.format(url=url or repository_url(), version=book_version(), jax_floor=low, table=table)


def _release(v: str) -> tuple[int, ...]:
    """`"0.8.1"` -> `(0, 8, 1)`, as the setup cell compares versions (no `packaging` on Colab needed)."""
    return tuple(int(p) for p in re.findall(r"\d+", v)[:3])


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


# ----------------------------------------------------------------------------- executing chapters
#
# The tests execute every chapter (`tests/test_chapters.py`) and the book build executes them
# again to render them. To pay once, both use one jupyter-cache (`execute_notebooks: cache`
# in `_config.yml`): a chapter executed without error by either is reused by the other. A
# cached run is valid for the notebook's code cells (jupyter-cache's key) *and* for the code
# it imports, so the cache lives in a folder named after a fingerprint of `helpers/`
# (sources and shipped files) and `requirements.txt`: change either and every chapter runs
# again.

EXECUTION_TIMEOUT = 300  # seconds per cell, as `execute.timeout` in `_config.yml`


def code_fingerprint(root: Path = ROOT) -> str:
    """16 hex digits of the sha256 of every file under `helpers/` (not caches) and of
    `requirements.txt`, names and bytes."""
    import hashlib

    h = hashlib.sha256()
    files = sorted(p for p in (root / "helpers").rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for p in [*files, root / "requirements.txt"]:
        if p.exists():
            h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def execution_cache_dir(build_dir: Path = ROOT / "_build") -> Path:
    """The jupyter-cache folder for the current code: `<build_dir>/.jupyter_cache/<fingerprint>`."""
    return Path(build_dir) / ".jupyter_cache" / code_fingerprint()


class ChapterRun(NamedTuple):
    reused: bool  # found in the cache, not executed
    seconds: float | None  # execution time (None when reused)
    notebook: Any  # the executed notebook (nbformat), or the source when reused


def glued_values(nb) -> dict[str, str]:
    """`{name: text}` of every value a notebook glued (`text/plain` of its glue outputs)."""
    out = {}
    for cell in nb.cells:
        for o in cell.get("outputs", []) if cell.cell_type == "code" else []:
            record = o.get("metadata", {}).get("scrapbook", {})
            if record.get("name"):
                out[record["name"]] = o.get("data", {}).get(record.get("mime_prefix", "") + "text/plain")
    return out


def execute_chapter(path: Path, *, cache: bool = True, build_dir: Path = ROOT / "_build") -> ChapterRun:
    """Executes chapter `path` as the book build does (its folder as working directory, no
    errors allowed) unless the cache holds a successful run of the same code (`cache=False`:
    always execute, store nothing); stores a successful run there. Raises `RuntimeError`
    with the failing cell's traceback."""
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn
    from jupyter_cache.executors.utils import single_nb_execution

    path = Path(path).resolve()
    nb = nbformat.read(path, as_version=4)
    store = get_cache(str(execution_cache_dir(build_dir))) if cache else None
    if store is not None:
        try:
            store.match_cache_notebook(nb)
            return ChapterRun(True, None, nb)
        except KeyError:
            pass
    result = single_nb_execution(nb, cwd=str(path.parent), allow_errors=False, timeout=EXECUTION_TIMEOUT, meta_override=True)
    if result.err is not None:
        raise RuntimeError(f"{path.name} failed:\n{result.exc_string}")
    if store is not None:
        store.cache_notebook_bundle(CacheBundleIn(nb, str(path), data={"execution_seconds": result.time}),
                                    check_validity=False, overwrite=True)
    return ChapterRun(False, result.time, nb)


def use_execution_cache(app, config) -> None:
    """Sphinx `config-inited` handler (`_ext/book_html.py`): the book build's jupyter-cache
    is `execution_cache_dir` of its build folder, the one `execute_chapter` fills."""
    config.nb_execution_cache_path = str(execution_cache_dir(Path(app.outdir).parent))


if __name__ == "__main__":
    if sys.argv[1:] != ["sync"]:
        sys.exit("usage: python -m helpers.book sync")
    for p in sync():
        print("updated", p)
