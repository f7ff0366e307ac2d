"""End to end: Otter assignments built from chapters 1 and 3, a folder of submissions graded
with `python -m helpers.course.grade` (each in a fresh `otter run`). The correct submission
scores full marks; a stub, a typical mistake, a monkeypatched check, a call of the course's
reference, and answers hard-coded from the book's cases each lose the marks they should.
The end-to-end test needs the `grading` extra (otter-grader) and is skipped without it."""

import csv
import json
import sys

import nbformat
import numpy as np
import pytest

from helpers.course import exercises, grade, grading
from helpers.course import otter as course_otter

ROOT = exercises.ROOT


def _book_auroc_cases() -> dict:
    """The book's AUROC cases and their answers, as a cheat would collect them from the
    public check (here straight from a spy: the best such a table can be)."""
    from helpers import checks

    table = {}
    mine = exercises.solutions(ROOT / "chapters" / "01_data_and_model.ipynb")["my_auroc"]

    def spy(y, s):
        table[repr((np.asarray(y).tolist(), np.asarray(s).tolist()))] = float(mine(y, s))
        return table[repr((np.asarray(y).tolist(), np.asarray(s).tolist()))]

    checks.check_auroc(spy)
    return table


ANSWERS = {  # submission -> {function: source of its answer cell}; absent: the book's solution; "STUB": the template
    "correct": {},
    "stub": {"my_auroc": "STUB", "my_mcc": "STUB"},
    "mistakes": {  # ties counted as wins; accuracy instead of MCC
        "my_auroc": "def my_auroc(y, scores):\n    pos, neg = scores[y == 1], scores[y == 0]\n"
                    "    return float((pos[:, None] >= neg[None, :]).mean())\n",
        "my_mcc": "def my_mcc(y, pred):\n    return float(np.mean(np.asarray(y) == np.asarray(pred)))\n"},
    "cheats": {  # a monkeypatched check with a wrong answer; the course's own MCC
        "my_auroc": "from helpers import checks\nchecks.check_auroc = lambda f, **k: 'AUROC: all cases pass'\n\n"
                    "def my_auroc(y, scores):\n    return 0.5\n",
        "my_mcc": "from helpers import metrics\n\ndef my_mcc(y, pred):\n"
                  "    return metrics.classification_metrics(y, 2.0 * pred - 1.0)['mcc']\n"},
    "lookup": {  # the book's cases hard-coded; MCC correct
        "my_auroc": "ANSWERS = {table!r}\n\ndef my_auroc(y, scores):\n"
                    "    return ANSWERS.get(repr((np.asarray(y).tolist(), np.asarray(scores).tolist())), 0.5)\n"},
}
EXPECTED = {"correct": (2, 2), "stub": (0, 0), "mistakes": (0, 0), "cheats": (0, 0), "lookup": (1, 2)}


def _submission(student_nb: nbformat.NotebookNode, answers: dict, table: dict) -> nbformat.NotebookNode:
    nb = nbformat.from_dict(json.loads(json.dumps(student_nb)))
    for cell in nb.cells:
        if "otter_answer_cell" not in cell.metadata.get("tags", []):
            continue
        name = next(f for f in ("my_auroc", "my_mcc") if f"def {f}(" in cell.source)
        src = answers.get(name)
        if src is None:
            cell.source = "\n".join(e.solution for e in exercises.exercises(ROOT / "chapters" / "01_data_and_model.ipynb")
                                    if e.function == name)
        elif src != "STUB":
            cell.source = src.replace("{table!r}", repr(table))
    return nb


@pytest.mark.slow
def test_grade_a_folder_of_submissions(tmp_path):
    pytest.importorskip("otter")
    dist = tmp_path / "dist"
    ch1 = ROOT / "chapters" / "01_data_and_model.ipynb"
    (folder,) = course_otter.build(dist, [ch1], salt="test-salt-0123", limit_s=60)
    student = nbformat.read(dist / ch1.stem / "student" / f"{ch1.stem}.ipynb", as_version=4)
    assert not any("Each solution is collapsed" in c.source for c in student.cells)  # no stale sentences
    assert not any("pos[:, None] >" in c.source for c in student.cells)  # the solution is not handed out
    table = _book_auroc_cases()
    subs = tmp_path / "submissions"
    for who, answers in ANSWERS.items():
        (subs / who).mkdir(parents=True)
        nbformat.write(_submission(student, answers, table), subs / who / f"{ch1.stem}.ipynb")
    out, feedback = tmp_path / "gradebook.csv", tmp_path / "feedback"
    grade.main([str(subs), "--autograders", str(dist), "--out", str(out), "--feedback", str(feedback)])
    rows = {r["submission"].split("/")[0]: r for r in csv.DictReader(out.open())}
    got = {who: (float(r["ch01_auroc"] or 0), float(r["ch01_mcc"] or 0)) for who, r in rows.items()}
    assert got == EXPECTED, got
    assert all(r["max"] == "4.0" and r["status"] == "graded" for r in rows.values())
    text = (feedback / "cheats" / f"{ch1.stem}.txt").read_text()
    assert "write it yourself" in text and "off by" in text


def test_fresh_check_ignores_a_monkeypatched_check_module():
    from helpers import checks
    from helpers.course.checks import _common

    saved = checks.check_auroc, _common.CheckFailed
    try:
        checks.check_auroc = lambda f, **k: "ok"
        with pytest.raises(AssertionError, match="off by"):
            grading.run_check("check_auroc", lambda y, s: 0.5)
    finally:
        checks.check_auroc = saved[0]


def test_hidden_cases_depend_on_the_submission_and_the_salt():
    def a(y, s):
        return 0.5

    def b(y, s):
        return 0.25

    assert grading.submission_seed(a, "salt-one") == grading.submission_seed(a, "salt-one")
    assert grading.submission_seed(a, "salt-one") != grading.submission_seed(b, "salt-one")
    assert grading.submission_seed(a, "salt-one") != grading.submission_seed(a, "salt-two")


def test_reference_monkeypatch_is_refused(monkeypatch):
    from helpers import metrics

    monkeypatch.setattr(metrics, "auroc", lambda y, s: 0.5)
    with pytest.raises(AssertionError, match="modified.*metrics.auroc"):
        grading.run_check("check_auroc", lambda y, s: 0.5)


def test_time_limit_per_check():
    import time

    def slow(y, s):
        time.sleep(5)
        return 0.5

    with pytest.raises(AssertionError, match="time limit of 1 s"):
        grading.run_check("check_auroc", slow, limit_s=1)


def test_master_notebook_has_one_question_per_exercise_with_public_and_hidden_tests():
    nb = course_otter.master_notebook(ROOT / "chapters" / "03_integrated_gradients.ipynb", salt="test-salt-0123")
    sources = [c.source for c in nb.cells]
    assert sum(s.startswith("# BEGIN QUESTION") for s in sources) == 2
    tests = [s for s in sources if "run_check(" in s]
    assert len(tests) == 4 and sum("hidden: true" in s for s in tests) == 2
    assert all("salt='test-salt-0123'" in s for s in tests if "hidden: true" in s)
    assert sys.modules["helpers.course.otter"] is course_otter
