"""The built book in a real browser: every chapter page opened in headless Chromium.

Runs against the HTML of `jupyter-book build .` (`_build/html`, or `$BOOK_HTML`): no page
errors (every SEVERE browser-log entry, except a named allow-list), every image loaded, every formula rendered by MathJax, and the
Colab launch link pointing at the chapter's notebook. The Explorer page (`chapters/explorer`,
charts drawn in the browser by vega-embed, no images) is checked on its own: its scripts come
from the book itself, and its search box, filters and peptide menu change what it draws (the
attribution values drawn are the chosen peptide's; the scatter follows the filters; the deletion
areas are greyed and marked where they cannot rank the methods). Skips when there is no built book or
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


EXPLORER = "chapters/explorer"


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [c["file"] for part in toc["parts"] for c in part["chapters"]]


def _chapters() -> list[str]:
    return [f for f in _toc_files() if f.startswith("chapters/") and f != EXPLORER]


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


# SEVERE browser-log entries that are not page errors, each named: (source, part of the message)
_ALLOWED_SEVERE = (
    ("network", "favicon.ico"),  # the browser asks for it on its own; the book has none
    ("console-api", "Got invalid theme mode"),  # pydata-sphinx-theme, when no colour mode is stored yet
)


def _is_page_error(entry: dict) -> bool:
    """Every SEVERE entry of the browser log (uncaught exceptions, failed loads, explicit
    `console.error` calls, Vega's errors) except those named in `_ALLOWED_SEVERE`."""
    if entry["level"] != "SEVERE":
        return False
    return not any(entry.get("source") == source and part in entry["message"] for source, part in _ALLOWED_SEVERE)


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


# ----------------------------------------------------------------------------- the Explorer page

_WAIT_READY = """
    const done = arguments[arguments.length - 1];
    const wait = (t) => {
        const roots = [...document.querySelectorAll('.idl-vega')];
        if (roots.length && roots.every(r => r.dataset.ready)) done(roots.map(r => r.id));
        else if (t > 600) done(roots.map(r => r.id + (r.dataset.ready ? '' : ' (not ready)')));
        else setTimeout(() => wait(t + 1), 100);
    };
    wait(0);
"""
_SETTLE = ("const done = arguments[arguments.length - 1]; "
           "document.getElementById('explorer').explorer.view.runAsync().then(() => setTimeout(() => done(true), 50));")
_BARS = """return [...document.querySelectorAll('#explorer-chart path[aria-label]')]
               .map(e => e.getAttribute('aria-label')).filter(s => s.includes('attribution: '));"""


def _residues(labels: list[str]) -> set[str]:
    """The residues ("K12") the attribution bars are drawn for, from their aria labels."""
    import re

    return {m.group(1) for s in labels for m in [re.search(r"residue: ([A-Z]\d+)", s)] if m}


def _expected_residues(sequence: str) -> set[str]:
    return {f"{a}{i}" for i, a in enumerate(sequence, start=1)}


def _number(text: str) -> float:
    return float(text.replace("\u2212", "-").replace(",", ""))


def _drawn_values_are_the_peptides(driver, i: int) -> int:
    """Every attribution bar drawn (method label, residue, value from its aria label) against
    the page's `residues` dataset for peptide `i`; returns the number of bars checked."""
    import re

    view = "document.getElementById('explorer').explorer.view"
    row = next(r for r in driver.execute_script(f"return {view}.data('residues')") if r["i"] == i)
    key = {m["label"]: m["key"] for m in driver.execute_script(f"return {view}.data('methods')")}
    checked = 0
    for s in driver.execute_script(_BARS):
        m = re.search(r"residue: [A-Z](\d+); attribution: ([^;]+); label: ([^;]+);", s)
        assert m, s
        pos, value, label = int(m.group(1)), _number(m.group(2)), m.group(3)
        stored = row[key[label]][pos - 1]
        assert value == pytest.approx(stored, rel=1e-2, abs=1e-3 * max(1.0, abs(stored))), (s, stored)
        checked += 1
    return checked


def _area_note(driver) -> tuple[list[bool], bool]:
    """The `comparable` flags of the drawn deletion-area bars and whether the 'not comparable' note is drawn."""
    labels = driver.execute_script("""return [...document.querySelectorAll('#explorer-chart [aria-label]')]
        .map(e => e.getAttribute('aria-label')).filter(s => s.startsWith('normalised deletion area: '));""")
    note = driver.execute_script("""return [...document.querySelectorAll('#explorer-chart text')]
        .some(t => t.textContent.includes('not comparable'));""")
    return [s.endswith("comparable: true") for s in labels], note


@pytest.fixture
def explorer_page(browser):
    driver, base = browser
    if not (HTML / f"{EXPLORER}.html").exists():
        if REQUIRED and EXPLORER in _toc_files():
            pytest.fail(f"{EXPLORER} is in the table of contents but {HTML / EXPLORER}.html was not built")
        pytest.skip(f"no {EXPLORER}.html in {HTML}")
    driver.get_log("browser")
    driver.get(f"{base}/{EXPLORER}.html")
    ready = driver.execute_async_script(_WAIT_READY)
    return driver, base, ready


def test_explorer_page_loads_its_own_scripts_without_errors(explorer_page):
    driver, base, ready = explorer_page
    assert ready == ["explorer", "agreement", "by-amino-acid"], f"charts drawn: {ready}"
    log = driver.get_log("browser")
    errors = [e["message"][:200] for e in log if _is_page_error(e)]
    vega_warnings = [e["message"][:200] for e in log if '"WARN"' in e["message"] or "vega" in e["message"].lower()]
    assert not errors and not vega_warnings, f"page errors {errors}, Vega warnings {vega_warnings}"
    resources = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    scripts = driver.execute_script("return [...document.scripts].map(s => s.src).filter(s => s)")
    assert all(u.startswith(base) for u in resources + scripts), f"loaded from elsewhere: {[u for u in resources + scripts if not u.startswith(base)]}"
    assert {"vega.min.js", "vega-lite.min.js", "vega-embed.min.js"} <= {u.split("/")[-1].split("?")[0] for u in scripts}
    repo, branch = _repository()
    colab = driver.execute_script("return [...document.querySelectorAll('a[href*=\"colab.research.google.com\"]')].map(a => a.href)")
    assert colab and all(h == f"https://colab.research.google.com/github/{repo}/blob/{branch}/{EXPLORER}.ipynb" for h in colab)


def test_explorer_choosing_another_peptide_changes_the_attributions(explorer_page):
    from selenium.webdriver.support.ui import Select

    driver, _, _ = explorer_page
    peptides = driver.execute_script("return document.getElementById('explorer').explorer.view.data('peptides')")
    assert len(peptides) == 561
    by_id = {p["i"]: p for p in peptides}
    first = driver.execute_script("return document.getElementById('explorer').explorer.current()")
    before = driver.execute_script(_BARS)
    assert before and _residues(before) == _expected_residues(by_id[first]["sequence"])
    menu = Select(driver.find_element("id", "explorer-peptide"))
    assert len(menu.options) == 561
    other = next(p for p in peptides if p["i"] != first and p["sequence"] != by_id[first]["sequence"])
    menu.select_by_value(str(other["i"]))
    driver.execute_async_script(_SETTLE)
    after = driver.execute_script(_BARS)
    assert driver.execute_script("return document.getElementById('explorer').explorer.view.signal('peptide')") == other["i"]
    assert after != before and _residues(after) == _expected_residues(other["sequence"])
    assert other["sequence"] in driver.find_element("id", "explorer-summary").text
    # the drawn values are this peptide's, method by method and residue by residue
    n_methods = len(driver.execute_script("return document.getElementById('explorer').explorer.view.data('methods')"))
    assert _drawn_values_are_the_peptides(driver, other["i"]) == n_methods * len(other["sequence"])
    # the deletion areas are coloured only where they rank the methods; elsewhere the chart says so
    for p in (next(q for q in peptides if q["comparable"]), next(q for q in peptides if not q["comparable"])):
        menu.select_by_value(str(p["i"]))
        driver.execute_async_script(_SETTLE)
        flags, note = _area_note(driver)
        assert len(flags) == n_methods and set(flags) == {p["comparable"]} and note == (not p["comparable"])


def test_explorer_search_and_filters_find_a_peptide(explorer_page):
    from selenium.webdriver.support.ui import Select

    driver, _, _ = explorer_page
    peptides = driver.execute_script("return document.getElementById('explorer').explorer.view.data('peptides')")
    seqs = [p["sequence"] for p in peptides]
    # a peptide that is no other peptide's substring, and not the one shown first
    first = driver.execute_script("return document.getElementById('explorer').explorer.current()")
    target = next(p for p in peptides if p["i"] != first and len(p["sequence"]) >= 8
                  and sum(p["sequence"] in s for s in seqs) == 1)
    box = driver.find_element("id", "explorer-search")
    box.clear()
    box.send_keys(target["sequence"].lower())  # the search ignores case
    driver.execute_async_script(_SETTLE)
    menu = Select(driver.find_element("id", "explorer-peptide"))
    assert [o.get_attribute("value") for o in menu.options] == [str(target["i"])]
    assert driver.find_element("id", "explorer-count").text.startswith("1 of 561")
    assert driver.execute_script("return document.getElementById('explorer').explorer.current()") == target["i"]
    assert _residues(driver.execute_script(_BARS)) == _expected_residues(target["sequence"])

    box.clear()
    box.send_keys("K")  # then: hemolytic peptides with a lysine, as the filters say
    Select(driver.find_element("id", "explorer-label")).select_by_value("1")
    driver.execute_async_script(_SETTLE)
    shown = [int(o.get_attribute("value")) for o in Select(driver.find_element("id", "explorer-peptide")).options]
    expected = [p["i"] for p in peptides if "K" in p["sequence"] and p["label"] == 1]
    assert shown == expected and 0 < len(expected) <= 85
    chosen = driver.execute_script("return document.getElementById('explorer').explorer.current()")
    assert chosen in expected

    # the prediction filter, and the scatter of test peptides follows the filters as the menu does
    Select(driver.find_element("id", "explorer-label")).select_by_value("all")
    Select(driver.find_element("id", "explorer-prediction")).select_by_value("1")
    driver.execute_async_script(_SETTLE)
    shown = [int(o.get_attribute("value")) for o in Select(driver.find_element("id", "explorer-peptide")).options]
    expected = [p["i"] for p in peptides if "K" in p["sequence"] and p["prediction"] == 1]
    assert shown == expected and 0 < len(expected) < sum("K" in s for s in seqs)
    points = driver.execute_script("""return [...document.querySelectorAll('#explorer-chart [aria-label]')]
        .map(e => e.getAttribute('aria-label')).filter(s => s.startsWith('logit of the CNN: '));""")
    assert len(points) == len(expected) and all("prediction: hemolytic" in s for s in points)
