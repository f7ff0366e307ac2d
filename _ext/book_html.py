"""Sphinx extension: where executed chapters are cached, and two fixes to the HTML.

- The jupyter-cache of executed chapters is `_build/.jupyter_cache/<fingerprint of helpers/
  and requirements.txt>` (`helpers.book.execution_cache_dir`), the folder `pytest` fills
  too: a chapter the tests executed is not executed again, and a change to the code it
  imports runs it afresh.

- MathJax 3 is served with the book instead of from a CDN, so the built book renders its
  formulas offline (a reader's laptop on a train, the CI machine, the browser test). The
  release is fetched once from the npm registry, verified against its sha256
  (`helpers.data.fetch`, cached beside the data) and its `es5` bundle copied to
  `_static/mathjax/` (`mathjax_path` in `_config.yml` points there).
- Duplicate script tags are dropped from every page: jupyter-book 1 sets sphinx-thebe up
  twice, and the second `const THEBE_JS_URL = ...` is an uncaught SyntaxError on every page.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

MATHJAX = "mathjax-3.2.2.tgz"


def _add_mathjax(app) -> None:
    from helpers import data

    target = data.data_root() / "mathjax-3.2.2"  # holds mathjax/, copied into _static/
    if not (target / "mathjax" / "tex-mml-chtml.js").exists():
        with tarfile.open(data.fetch(MATHJAX)) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith("package/es5/") and m.isfile()]
            for m in members:
                m.name = "mathjax/" + m.name[len("package/es5/"):]
            tar.extractall(target, members=members, filter="data")
    app.config.html_static_path.append(str(Path(target).resolve()))


def _drop_duplicate_scripts(app, pagename, templatename, context, doctree) -> None:
    seen, kept = set(), []
    for js in context.get("script_files", []):
        # inline scripts come with filename None or "": the same script either way
        name = getattr(js, "filename", js) or ""
        key = (str(name), tuple(sorted((k, str(v)) for k, v in getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(js)
    context["script_files"] = kept


def setup(app):
    from helpers import book

    app.connect("config-inited", book.use_execution_cache)
    app.connect("builder-inited", _add_mathjax)
    app.connect("html-page-context", _drop_duplicate_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
