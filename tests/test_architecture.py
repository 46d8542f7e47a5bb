"""The layers as docs/architecture.md draws them are the layers the code has."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_architecture_diagram_is_the_codes():
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "architecture_diagram.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_no_module_over_500_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in (ROOT / "genrelib").rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 500
    }
    assert not long, f"split these modules by job: {long}"


def test_every_package_says_what_its_layer_is_for_and_lists_its_public_names():
    import importlib

    for init in (ROOT / "genrelib").glob("*/__init__.py"):
        pkg = importlib.import_module(f"genrelib.{init.parent.name}")
        assert pkg.__doc__ and len(pkg.__doc__.split()) > 10, init
        assert pkg.__all__ and all(hasattr(pkg, n) for n in pkg.__all__), init


def test_no_public_name_hides_a_module_of_its_package():
    # `from genrelib.training import fit` must not be both a function and the module genrelib.training.fit:
    # `import genrelib.training.fit as m` would then give the function
    import importlib

    for init in (ROOT / "genrelib").glob("*/__init__.py"):
        modules = {p.stem for p in init.parent.glob("*.py")} - {"__init__", "__main__"}
        pkg = importlib.import_module(f"genrelib.{init.parent.name}")
        assert not set(pkg.__all__) & modules, (init.parent.name, set(pkg.__all__) & modules)


def test_the_license_is_an_spdx_expression_not_the_deprecated_table():
    # setuptools warns "project.license as a TOML table is deprecated" on every install of the table form
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "MIT"
