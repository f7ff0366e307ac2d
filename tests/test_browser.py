"""The built book in a real browser: every chapter page opened in headless Chromium.

Runs against the HTML of `jupyter-book build .` (`_build/html`, or `$BOOK_HTML`): no page
errors (uncaught exceptions, failed loads), every image loaded, every formula rendered by MathJax, and the
Colab launch link pointing at the chapter's notebook. Skips when there is no built book or
no Chromium; `.ci/run` sets `BOOK_BROWSER_TEST=1` after its book build, which turns those
skips into failures. Chromium: Debian's `chromium` and `chromium-driver` packages.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
HTML = Path(os.environ.get("BOOK_HTML", ROOT / "_build" / "html"))
REQUIRED = os.environ.get("BOOK_BROWSER_TEST") == "1"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def _chapters() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [c["file"] for part in toc["parts"] for c in part["chapters"] if c["file"].startswith("chapters/")]


def _missing() -> str | None:
    if not (HTML / "index.html").exists():
        return f"no built book at {HTML} (run `jupyter-book build .` first)"
    if not (CHROMIUM and CHROMEDRIVER):
        return "Chromium or chromedriver not found (Debian: apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -r requirements.txt)"
    return None


@pytest.fixture(scope="module")
def browser():
    why = _missing()
    if why:
        if REQUIRED:
            pytest.fail(why)
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(HTML))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(60)
    try:
        yield driver, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        driver.quit()
        server.shutdown()


def _is_page_error(entry: dict) -> bool:
    """An uncaught exception, or a resource the page asked for that failed to load. Not:
    messages a script logs on purpose (pydata-sphinx-theme logs one when no colour mode is
    stored yet) or the favicon the browser asks for on its own."""
    if entry["level"] != "SEVERE":
        return False
    if entry.get("source") == "network":
        return "favicon.ico" not in entry["message"]
    return entry.get("source") == "javascript"


def _repository() -> tuple[str, str]:
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    url = cfg["repository"]["url"].removeprefix("https://github.com/").rstrip("/")
    return url, cfg["repository"].get("branch", "main")


@pytest.mark.parametrize("chapter", _chapters())
def test_chapter_page_in_a_browser(browser, chapter):
    driver, base = browser
    driver.get_log("browser")  # drop what earlier pages left
    driver.get(f"{base}/{chapter}.html")
    # Wait for MathJax to finish typesetting (its startup promise), if the page loads it.
    state = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const wait = (t) => {
            if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
                MathJax.startup.promise.then(() => done("typeset"), (e) => done("error: " + e));
            } else if (t > 100) { done("no mathjax"); } else { setTimeout(() => wait(t + 1), 100); }
        };
        wait(0);
    """)
    math = driver.execute_script("""
        const all = [...document.querySelectorAll('.math')];
        return [all.length, all.filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 60))];
    """)
    images = driver.execute_script("""
        return [...document.images].map(i => [i.getAttribute('src').slice(0, 80), i.complete && i.naturalWidth > 0]);
    """)
    colab = driver.execute_script("""
        return [...document.querySelectorAll('a[href*="colab.research.google.com"]')].map(a => a.href);
    """)
    errors = [e for e in driver.get_log("browser") if _is_page_error(e)]

    assert not errors, f"{chapter}: page errors {[e['message'][:200] for e in errors]}"
    broken = [src for src, ok in images if not ok]
    assert images and not broken, f"{chapter}: {len(images)} images, not loaded: {broken}"
    if math[0]:
        assert state == "typeset", f"{chapter}: MathJax {state}"
        assert not math[1], f"{chapter}: {len(math[1])} of {math[0]} formulas not rendered, e.g. {math[1][:3]}"
    repo, branch = _repository()
    expected = f"https://colab.research.google.com/github/{repo}/blob/{branch}/{chapter}.ipynb"
    assert colab and all(href == expected for href in colab), f"{chapter}: Colab links {colab}, expected {expected}"


def test_math_renders_on_a_formula_heavy_page(browser):
    """The math check above must not pass vacuously: the book has formulas, and they render."""
    driver, base = browser
    driver.get(f"{base}/chapters/03_integrated_gradients.html")
    driver.execute_async_script("const done = arguments[arguments.length - 1]; "
                                "const w = () => (window.MathJax && MathJax.startup && MathJax.startup.promise) "
                                "? MathJax.startup.promise.then(() => done()) : setTimeout(w, 100); w();")
    assert driver.execute_script("return document.querySelectorAll('mjx-container').length") > 5
