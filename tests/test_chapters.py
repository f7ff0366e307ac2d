"""Every chapter executes without an error: the chapters are tests too.

Each chapter runs in its own kernel with `chapters/` as working directory, as the book
build runs it (`helpers.book.execute_chapter`). A successful run is stored in the book
build's jupyter-cache, so that `jupyter-book build .` afterwards renders it instead of
executing the chapter a second time; a chapter whose code cells, `helpers/` and pinned
requirements are unchanged since a successful run there is reused, not run again.

`CHAPTER_CACHE=off` runs every chapter afresh and stores nothing (`.ci/run` uses it for its
one-core run); `CHAPTER_GLUE_DIR=DIR` writes each executed chapter's glued values to
`DIR/<chapter>.json`, to compare the numbers of two configurations.
"""

import json
import os
from pathlib import Path

import pytest

from helpers import book


@pytest.mark.parametrize("path", book.chapters(), ids=lambda p: p.stem)
def test_chapter_executes(path):
    try:
        run = book.execute_chapter(path, cache=os.environ.get("CHAPTER_CACHE", "on") != "off")
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    if run.reused:
        print(f"{path.stem}: reused from the book's execution cache")
        return
    print(f"{path.stem}: executed in {run.seconds:.0f} s")
    if os.environ.get("CHAPTER_GLUE_DIR"):
        out = Path(os.environ["CHAPTER_GLUE_DIR"])
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{path.stem}.json").write_text(json.dumps(book.glued_values(run.notebook), indent=1, sort_keys=True))
