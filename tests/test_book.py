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
    book.sync([copy])  # the chapter as `python -m helpers.book sync` leaves it
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


# ----------------------------------------------------------------------------- the Colab cell


def _run_setup_cell(monkeypatch, jax_version, returncode=0, colab=True):
    """Executes the setup cell as Colab would, with jax `jax_version` installed and pip
    faked; returns the commands it ran."""
    import importlib.metadata
    import subprocess
    import sys
    import types

    commands = []

    def fake_run(command, **kwargs):
        commands.append(list(command))
        assert kwargs.get("capture_output") and kwargs.get("text")  # pip's output is kept to show
        return subprocess.CompletedProcess(command, returncode, stdout="pip says: resolution impossible", stderr="pip err")

    real_version = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: jax_version if name == "jax" else real_version(name))
    monkeypatch.setattr(subprocess, "run", fake_run)
    if colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(book.setup_cell_source(), "<colab-setup>", "exec"), {"__name__": "__main__"})
    return commands


def test_setup_cell_names_the_version_and_the_jax_floor_of_pyproject():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    src = book.setup_cell_source()
    assert f"git+{book.repository_url()}@v{project['version']}\"" in src  # the tagged release
    assert book.jax_floor() in project["dependencies"][[d.split(">=")[0] for d in project["dependencies"]].index("jax")]
    assert f'release("{book.jax_floor()}")' in src


def test_setup_cell_on_a_current_jax_installs_the_matching_haiku_and_the_tagged_helpers(monkeypatch):
    commands = _run_setup_cell(monkeypatch, "0.10.2")
    assert len(commands) == 1
    args = commands[0][commands[0].index("install") + 1:]
    assert "jax==0.10.2" in args  # Colab's jax stays as it is
    assert "dm-haiku==0.0.17" in args
    assert f"idl-jax-helpers @ git+{book.repository_url()}@v{book.book_version()}" in args


def test_setup_cell_picks_haiku_from_the_table(monkeypatch):
    monkeypatch.setattr(book, "HAIKU_FOR_JAX", [("0.8.0", "0.0.15"), ("0.9.0", "0.0.16"), ("0.10.0", "0.0.17")])
    for jax_version, haiku in [("0.8.0", "0.0.15"), ("0.8.3", "0.0.15"), ("0.9.2", "0.0.16"),
                               ("0.10.2", "0.0.17"), ("0.11.0.dev20270101", "0.0.17")]:
        assert f"dm-haiku=={haiku}" in _run_setup_cell(monkeypatch, jax_version)[0], jax_version


def test_setup_cell_on_an_old_jax_stops_and_says_what_to_do(monkeypatch):
    with pytest.raises(RuntimeError, match=r"needs jax >= 0\.8\.0; this Colab has jax 0\.4\.33\. Run .*pip install -U 'jax>=0\.8\.0'.*Restart session"):
        _run_setup_cell(monkeypatch, "0.4.33")


def test_setup_cell_shows_pips_output_when_pip_fails(monkeypatch, capsys):
    with pytest.raises(RuntimeError, match=r"pip failed \(exit 1\), its output is above"):
        _run_setup_cell(monkeypatch, "0.10.2", returncode=1)
    out = capsys.readouterr().out
    assert "pip says: resolution impossible" in out and "pip err" in out


def test_setup_cell_does_nothing_outside_colab(monkeypatch):
    assert _run_setup_cell(monkeypatch, "0.4.0", colab=False) == []


def test_haiku_table_must_start_at_the_jax_floor(monkeypatch):
    monkeypatch.setattr(book, "HAIKU_FOR_JAX", [("0.9.0", "0.0.17")])
    with pytest.raises(ValueError, match="HAIKU_FOR_JAX"):
        book.setup_cell_source()
