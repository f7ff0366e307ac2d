"""The lowest versions `pyproject.toml` allows, as pip constraints, to test the floors.

`pyproject.toml` declares loose lower bounds (`jax>=0.8.0`) so that `helpers` installs next
to the versions a reader already has (Colab). Those bounds are claims: CI installs exactly
the floor of every dependency in a fresh venv and runs the unit tests and two chapters
there (`.ci/run`, step "floors"). This module writes that install's requirements:

    python -m helpers.floors                 # the dependencies, `name==floor` per line
    python -m helpers.floors --extra test    # the same plus the `test` extra's floors

Every dependency must have a `>=` bound (a missing floor is an error: it could not be
tested). Reads `pyproject.toml` with `tomllib` (Python >= 3.11, as `requires-python`).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# A requirement `name[extras]>=X.Y,<Z ; marker`: its name and the version after `>=`.
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*)$")


def floor(requirement: str) -> tuple[str, str]:
    """`(name, lowest version)` of one PEP 508 requirement string with a `>=` bound."""
    if not isinstance(requirement, str):
        raise TypeError(f"requirement must be a string, got {type(requirement).__name__}")
    spec = requirement.split(";", 1)[0]
    m = _NAME.match(spec)
    if not m:
        raise ValueError(f"requirement {requirement!r}: no package name")
    name, rest = m.group(1), m.group(2)
    low = re.search(r">=\s*([0-9][A-Za-z0-9.+!-]*)", rest)
    if not low:
        raise ValueError(f"requirement {requirement!r} has no `>=` lower bound to test")
    return name, low.group(1)


def declared(pyproject: Path = ROOT / "pyproject.toml", *, extras: tuple[str, ...] = ()) -> list[str]:
    """The `[project] dependencies` (and those of `extras`) of `pyproject`, as written."""
    import tomllib

    project = tomllib.loads(Path(pyproject).read_text())["project"]
    reqs = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            raise ValueError(f"extras: {extra!r} is not in [project.optional-dependencies] ({sorted(optional)})")
        reqs += optional[extra]
    return reqs


def floor_requirements(pyproject: Path = ROOT / "pyproject.toml", *, extras: tuple[str, ...] = ()) -> list[str]:
    """`name==floor` for every declared dependency (and `extras`), in pyproject's order."""
    return [f"{name}=={low}" for name, low in map(floor, declared(pyproject, extras=extras))]


def requires_python(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """The lowest Python `requires-python` allows, e.g. `3.11`."""
    import tomllib

    spec = tomllib.loads(Path(pyproject).read_text())["project"]["requires-python"]
    return floor(f"python{spec}")[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m helpers.floors", description=__doc__.split("\n\n")[0])
    parser.add_argument("--extra", action="append", default=[], help="also an optional-dependencies group")
    parser.add_argument("--pyproject", type=Path, default=ROOT / "pyproject.toml")
    args = parser.parse_args(argv)
    reqs = floor_requirements(args.pyproject, extras=tuple(args.extra))
    print(f"# lowest versions pyproject.toml allows (python -m helpers.floors "
          f"{' '.join('--extra ' + e for e in args.extra)}".rstrip() + "); "
          f"Python >= {requires_python(args.pyproject)}")
    print("\n".join(reqs))


if __name__ == "__main__":
    main(sys.argv[1:])
