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
