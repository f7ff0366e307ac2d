"""Grade a folder of submitted notebooks with the Otter autograders of the book.

    python -m helpers.course.grade SUBMISSIONS/ --autograders DIST/ [--out gradebook.csv]
        [--feedback FEEDBACK/] [--timeout-s 1800] [--secret-file DIST/grading_secret.txt]

Every `*.ipynb` under SUBMISSIONS (e.g. `alice/01_data_and_model.ipynb`) is graded by the
autograder of the chapter its file name names (`DIST/<chapter>/autograder/*.zip`, written by
`python -m helpers.course.otter DIST`), with `otter run` in a fresh process (never the
student's kernel; each check also stops at its own time limit, `--limit-s` of the build).
Writes the gradebook (one row per submission, one column per exercise, then total and
maximum) and one feedback file per submission (each test's outcome and the sentence of
every failed check). The grading secret (`DIST/grading_secret.txt`, written by the build)
reaches the tests only through the environment of `otter run` (`COURSE_GRADING_SALT`); each
check's process gets the seed drawn from it, not the secret."""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def autograder_zip(autograders: Path, chapter: str) -> Path:
    """The newest autograder zip of `chapter` under `autograders`."""
    zips = sorted((autograders / chapter / "autograder").glob("*-autograder_*.zip"))
    if not zips:
        raise ValueError(f"autograders: no autograder for {chapter} in {autograders / chapter / 'autograder'} "
                         "(build it with python -m helpers.course.otter)")
    return zips[-1]


def read_secret(path: Path) -> str:
    """The grading secret written by `python -m helpers.course.otter` (`DIST/grading_secret.txt`)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"secret_file: no grading secret at {path} (build the assignments first, or pass --secret-file)")
    secret = path.read_text().strip()
    if len(secret) < 8:
        raise ValueError(f"secret_file: the secret in {path} is shorter than 8 characters")
    return secret


def grade_one(notebook: Path, zip_path: Path, *, secret: str, timeout_s: int = 1800) -> dict:
    """Run `otter run` on one notebook in a fresh process, with the grading `secret` in its
    environment; returns {"scores": {exercise: (score, max)}, "feedback": text, "status":
    "graded" | "timeout" | "error"}."""
    from helpers.course.grading import ROOT, SALT_ENV

    notebook, zip_path = Path(notebook).resolve(), Path(zip_path).resolve()  # otter runs in a temporary folder
    env = {**os.environ, SALT_ENV: secret, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory(prefix="grade_") as tmp:
        tmp = Path(tmp)
        sub = tmp / notebook.name
        shutil.copy(notebook, sub)
        (tmp / "out").mkdir()
        cmd = [sys.executable, "-m", "otter", "run", "-a", str(zip_path), "-o", str(tmp / "out"), str(sub)]
        try:
            proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=timeout_s, env=env)
        except subprocess.TimeoutExpired:
            return {"scores": {}, "feedback": f"grading stopped after {timeout_s} s", "status": "timeout"}
        results = tmp / "out" / "results.json"
        if not results.exists():
            tail = (proc.stdout + proc.stderr)[-3000:]
            return {"scores": {}, "feedback": f"otter run produced no results:\n{tail}", "status": "error"}
        tests = json.loads(results.read_text())["tests"]
    scores, lines = {}, []
    for t in tests:
        if "score" in t:
            scores[t["name"]] = (float(t["score"]), float(t["max_score"]))
            lines.append(f"## {t['name']}: {t['score']:g} / {t['max_score']:g}")
        else:
            lines.append(f"## {t['name']}")
        lines += [t.get("output", "").strip(), ""]
    return {"scores": scores, "feedback": "\n".join(lines), "status": "graded"}


def grade_folder(submissions: Path, autograders: Path, *, out: Path, feedback: Path, timeout_s: int = 1800,
                 secret_file: Path | None = None) -> list[dict]:
    """Grade every notebook under `submissions`; writes the gradebook CSV `out` and a
    feedback file per submission under `feedback`; returns the rows. The secret is read from
    `secret_file` (default `autograders/grading_secret.txt`)."""
    from helpers.course.otter import SECRET_FILE

    # absolute before anything runs elsewhere: `otter run` works in a temporary folder, where the
    # README's relative paths (`submissions/`, `dist/`) would name nothing
    submissions, autograders = Path(submissions).resolve(), Path(autograders).resolve()
    out, feedback = Path(out).resolve(), Path(feedback).resolve()
    secret = read_secret(Path(secret_file).resolve() if secret_file else autograders / SECRET_FILE)
    if not submissions.is_dir():
        raise ValueError(f"submissions: {submissions} is not a folder")
    notebooks = sorted(p for p in submissions.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if not notebooks:
        raise ValueError(f"submissions: no notebooks under {submissions}")
    rows, columns = [], []
    for nb in notebooks:
        ident = str(nb.relative_to(submissions).with_suffix(""))
        try:
            result = grade_one(nb, autograder_zip(autograders, nb.stem), secret=secret, timeout_s=timeout_s)
        except ValueError as e:
            result = {"scores": {}, "feedback": str(e), "status": "error"}
        row = {"submission": ident, "chapter": nb.stem, "status": result["status"]}
        for name, (score, _) in result["scores"].items():
            row[name] = score
            if name not in columns:
                columns.append(name)
        row["total"] = sum(s for s, _ in result["scores"].values())
        row["max"] = sum(m for _, m in result["scores"].values())
        rows.append(row)
        path = Path(feedback) / f"{ident}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {ident}: {row['total']:g} / {row['max']:g} ({result['status']})\n\n{result['feedback']}\n")
        print(f"{ident}: {row['total']:g} / {row['max']:g} ({result['status']})", flush=True)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["submission", "chapter", "status", *columns, "total", "max"], restval="")
        writer.writeheader()
        writer.writerows(rows)
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Grade a folder of submitted notebooks with the Otter autograders.")
    p.add_argument("submissions", type=Path, help="folder of submitted notebooks (searched recursively)")
    p.add_argument("--autograders", type=Path, required=True, help="output folder of python -m helpers.course.otter")
    p.add_argument("--out", type=Path, default=Path("gradebook.csv"), help="gradebook CSV (default gradebook.csv)")
    p.add_argument("--feedback", type=Path, default=Path("feedback"), help="folder for one feedback file per submission")
    p.add_argument("--timeout-s", type=int, default=1800, help="time limit per submission, seconds")
    p.add_argument("--secret-file", type=Path, default=None,
                   help="the grading secret (default: AUTOGRADERS/grading_secret.txt, written by the build)")
    a = p.parse_args(argv if argv is not None else sys.argv[1:])
    grade_folder(a.submissions, a.autograders, out=a.out, feedback=a.feedback, timeout_s=a.timeout_s,
                 secret_file=a.secret_file)


if __name__ == "__main__":
    main()
