"""The book's structure: the Colab cell, the launch button, the table of contents."""

import json
import re

import pytest

from helpers import book

ROOT = book.ROOT
CHAPTERS = book.chapters()


def _nb(path):
    return json.loads(path.read_text())


def test_there_are_chapters():
    assert CHAPTERS, "no notebooks under chapters/"


def test_repository_url_is_read_from_config():
    assert book.repository_url().startswith("https://github.com/")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_every_chapter_has_exactly_the_colab_setup_cell(path):
    cells = [c for c in _nb(path)["cells"] if c["cell_type"] == "code"]
    expected = book.setup_cell_source()
    assert "".join(cells[0]["source"]) == expected, "run `python -m helpers.book sync`"
    assert cells[0]["metadata"].get("tags") == ["remove-cell"]  # hidden in the book
    assert sum("google.colab" in "".join(c["source"]) for c in cells) == 1
    assert book.repository_url() in expected


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapters_are_stored_without_outputs(path):
    for cell in _nb(path)["cells"]:
        if cell["cell_type"] == "code":
            assert not cell["outputs"] and cell["execution_count"] is None


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapters_open_with_title_and_objectives(path):
    cells = _nb(path)["cells"]
    assert cells[0]["cell_type"] == "markdown" and "".join(cells[0]["source"]).startswith("# ")
    text = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert re.search(r"```\{admonition\} (Learning objectives|What you will learn)", text)


def test_config_has_the_colab_launch_button():
    cfg = (ROOT / "_config.yml").read_text()
    assert re.search(r"^launch_buttons:\n(?:\s+.*\n)*?\s+colab_url:\s*https://colab\.research\.google\.com", cfg, re.M)
    assert re.search(r"^repository:\n(?:\s+.*\n)*?\s+url:\s*https://", cfg, re.M)


def test_toc_lists_every_chapter_and_nothing_else():
    toc = (ROOT / "_toc.yml").read_text()
    listed = set(re.findall(r"file:\s*(chapters/\S+)", toc))
    on_disk = {f"chapters/{p.stem}" for p in CHAPTERS}
    assert listed == on_disk
    assert re.search(r"^root:\s*index", toc, re.M)


def test_sync_is_idempotent(tmp_path):
    src = CHAPTERS[0]
    copy = tmp_path / src.name
    copy.write_text(src.read_text())
    assert book.sync([copy]) == []  # already in sync
    nb = _nb(copy)
    nb["cells"] = [c for c in nb["cells"] if "google.colab" not in "".join(c["source"])]
    copy.write_text(json.dumps(nb))
    assert book.sync([copy]) == [copy]
    assert book.sync([copy]) == []
    first_code = next(c for c in _nb(copy)["cells"] if c["cell_type"] == "code")
    assert "".join(first_code["source"]) == book.setup_cell_source()


def test_the_book_build_reuses_what_the_tests_executed(tmp_path):
    """A notebook executed by `book.execute_chapter` is rendered from the cache by
    jupyter-book (`execute_notebooks: cache`) and not executed again; the cache folder
    follows the code's fingerprint."""
    import subprocess
    import sys
    from pathlib import Path

    import nbformat

    nb = nbformat.v4.new_notebook()
    # The second cell fails when run again: a rerun by the build would show up as an error.
    marker = tmp_path / "ran_once"
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A chapter\n\nThe answer is {glue:text}`answer`."),
        nbformat.v4.new_code_cell(
            f"from pathlib import Path\nmarker = Path({str(marker)!r})\nassert not marker.exists(), 'executed twice'\n"
            "marker.write_text('x')\nfrom myst_nb import glue\nglue('answer', 42)"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "chapter.ipynb")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: chapter\n")
    (tmp_path / "_ext").mkdir()
    (tmp_path / "_ext" / "cachehook.py").write_text(
        "from helpers import book\n\ndef setup(app):\n    app.connect('config-inited', book.use_execution_cache)\n")
    (tmp_path / "_config.yml").write_text(
        "title: t\nexecute:\n  execute_notebooks: cache\n  allow_errors: false\n"
        "sphinx:\n  local_extensions:\n    cachehook: _ext\n")
    first = book.execute_chapter(tmp_path / "chapter.ipynb", build_dir=tmp_path / "_build")
    again = book.execute_chapter(tmp_path / "chapter.ipynb", build_dir=tmp_path / "_build")
    assert not first.reused and again.reused and book.glued_values(first.notebook) == {"answer": "42"}
    assert book.execution_cache_dir(tmp_path / "_build").name == book.code_fingerprint()
    jb = Path(sys.executable).parent / "jupyter-book"
    out = subprocess.run([str(jb), "build", str(tmp_path), "-W", "-n"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "Using cached notebook" in out.stdout + out.stderr
    assert 'The answer is <span class="pasted-text">42</span>' in (tmp_path / "_build" / "html" / "chapter.html").read_text()
