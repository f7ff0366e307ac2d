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
- Vega, Vega-Lite and vega-embed (the Explorer page's interactive charts) are served the same
  way: each release's npm tarball is fetched once, checked against its sha256 (`VEGA`), cached
  in the data folder's `downloads/`, and its minified browser bundle copied to `_static/vega/`.
  The three scripts are added only to pages that call `vegaEmbed` (an HTML output of a
  notebook), after the page's own scripts are listed, so the inline specs find them loaded.
- Duplicate script tags are dropped from every page: jupyter-book 1 sets sphinx-thebe up
  twice, and the second `const THEBE_JS_URL = ...` is an uncaught SyntaxError on every page.
"""

from __future__ import annotations

import os
import tarfile
import tempfile
import urllib.request
from pathlib import Path

MATHJAX = "mathjax-3.2.2.tgz"

# npm tarball -> (URL, sha256 of the tarball, the bundle inside it, its name in _static/vega/).
# Versions: those altair 6.3.0 targets (Vega-Lite 6.4.1, Vega 6, vega-embed 7).
VEGA = {
    "vega-6.2.0.tgz": ("https://registry.npmjs.org/vega/-/vega-6.2.0.tgz",
                       "aa98ba8c2141f60123e98cdac229303450b1401e5c20f4434a18431e9a9a344d",
                       "package/build/vega.min.js", "vega.min.js"),
    "vega-lite-6.4.1.tgz": ("https://registry.npmjs.org/vega-lite/-/vega-lite-6.4.1.tgz",
                            "7226845c140626b2bf2dae3dd7372d6e2dbdf65380d857c70da8e487ca6cf15e",
                            "package/build/vega-lite.min.js", "vega-lite.min.js"),
    "vega-embed-7.1.0.tgz": ("https://registry.npmjs.org/vega-embed/-/vega-embed-7.1.0.tgz",
                             "a4db01011ad87ed847b83c3b47538f08145ec269bb3c2bff8e35ff692e0f0d58",
                             "package/build/vega-embed.min.js", "vega-embed.min.js"),
}
VEGA_MARKER = "vegaEmbed("  # a page whose HTML outputs call it gets the scripts


def fetch_checked(name: str, url: str, sha256: str, cache_dir: Path) -> Path:
    """`cache_dir/name`, downloaded from `url` if missing; raises RuntimeError unless its
    sha256 is `sha256` (as `helpers.data.fetch` does for the data files)."""
    from helpers import data

    target = Path(cache_dir) / name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{name}.")
        os.close(fd)
        try:
            with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:
                f.write(r.read())
            os.replace(tmp, target)
        except OSError as e:
            Path(tmp).unlink(missing_ok=True)
            raise RuntimeError(f"could not download {url} ({e}); save it by hand as {target}") from e
    actual = data.sha256_of(target)
    if actual != sha256:
        raise RuntimeError(f"{target} (from {url}) has sha256 {actual}, expected {sha256}; delete it to download it again")
    return target


def _add_vega(app) -> None:
    from helpers import data

    root = data.data_root() / "vega-js"
    target = root / "static"  # holds vega/, copied into _static/
    for name, (url, sha256, member, as_name) in VEGA.items():
        tgz = fetch_checked(name, url, sha256, data.data_root() / "downloads")
        out = target / "vega" / as_name
        stamp = root / f"{as_name}.sha256"  # which tarball the copy came from
        if not out.exists() or not stamp.exists() or stamp.read_text() != sha256:
            out.parent.mkdir(parents=True, exist_ok=True)
            with tarfile.open(tgz) as tar:
                out.write_bytes(tar.extractfile(member).read())
            stamp.write_text(sha256)
    app.config.html_static_path.append(str(Path(target).resolve()))


def _calls_vega(doctree) -> bool:
    from docutils import nodes

    return doctree is not None and any(VEGA_MARKER in n.astext() for n in doctree.findall(nodes.raw))


def _add_vega_scripts(app, pagename, templatename, context, doctree) -> None:
    if _calls_vega(doctree):
        for _, _, _, as_name in VEGA.values():
            app.add_js_file(f"vega/{as_name}")


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
    app.connect("builder-inited", _add_vega)
    app.connect("html-page-context", _add_vega_scripts)
    app.connect("html-page-context", _drop_duplicate_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
