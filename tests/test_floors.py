"""`helpers.floors`: the lowest versions pyproject.toml allows, as CI installs them."""

import pytest

from helpers import floors


def test_floor_of_a_requirement():
    assert floors.floor("jax>=0.8.0") == ("jax", "0.8.0")
    assert floors.floor("optax >= 0.2.3, <1") == ("optax", "0.2.3")
    assert floors.floor("jax[cpu]>=0.8 ; python_version >= '3.11'") == ("jax", "0.8")


def test_a_requirement_without_a_floor_is_an_error():
    with pytest.raises(ValueError, match="no `>=` lower bound"):
        floors.floor("numpy")
    with pytest.raises(ValueError, match="no `>=` lower bound"):
        floors.floor("numpy<3")
    with pytest.raises(TypeError, match="requirement must be a string"):
        floors.floor(3)


def test_floor_requirements_of_a_pyproject(tmp_path):
    p = tmp_path / "pyproject.toml"
    p.write_text('[project]\nname = "x"\nrequires-python = ">=3.11"\n'
                 'dependencies = ["jax>=0.8.0", "numpy>=2.0  "]\n'
                 '[project.optional-dependencies]\ntest = ["pytest>=8"]\n')
    assert floors.floor_requirements(p) == ["jax==0.8.0", "numpy==2.0"]
    assert floors.floor_requirements(p, extras=("test",)) == ["jax==0.8.0", "numpy==2.0", "pytest==8"]
    assert floors.requires_python(p) == "3.11"
    with pytest.raises(ValueError, match="extras: 'docs'"):
        floors.floor_requirements(p, extras=("docs",))


def test_every_declared_dependency_of_the_course_has_a_floor():
    """Every dependency and every extra CI installs at its floors (`.ci/run`, step "floors")."""
    reqs = floors.floor_requirements(extras=("test", "grading"))
    names = [r.split("==")[0] for r in reqs]
    assert {"jax", "dm-haiku", "numpy", "tensorflow-datasets", "pytest", "otter-grader", "wrapt"} <= set(names)
    assert floors.requires_python() == "3.11"


def test_the_floors_are_what_requirements_txt_pins_or_lower():
    """The pinned versions of the full CI run satisfy every floor (else a floor is untested)."""
    from helpers.book import ROOT, _release

    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, v = line.split("==")
            pins[name.lower().replace("_", "-")] = v
    for req in floors.floor_requirements(extras=("test", "grading")):
        name, low = req.split("==")
        pinned = pins.get(name.lower().replace("_", "-"))
        assert pinned is not None, f"{name} is not pinned in requirements.txt"
        assert _release(pinned) >= _release(low), (name, pinned, low)
