"""pyproject.toml installs the packages: doctriage_local, the layer's doctriage_core, functions.

The package list is explicit (doctriage_core is mapped to shared/doctriage_core, which
find-packages cannot express beside doctriage_local), so a new sub-package must be added there
by hand: this test says so before an installed `doctriage` command fails with
ModuleNotFoundError.
"""

from __future__ import annotations

import tomllib

from doctriage_local.paths import PROJECT_ROOT

PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def _packages_under(root: str, name: str) -> set[str]:
    base = PROJECT_ROOT / root
    return {
        ".".join(init.parent.relative_to(base.parent).parts)
        for init in base.rglob("__init__.py")
        if "__pycache__" not in init.parts
    } | {name}


def test_every_package_of_the_three_trees_is_listed() -> None:
    expected = (
        _packages_under("doctriage_local", "doctriage_local")
        | _packages_under("shared/doctriage_core", "doctriage_core")
        | _packages_under("functions", "functions")
    )
    assert set(SETUPTOOLS["packages"]) == expected


def test_doctriage_core_is_installed_from_where_the_layer_is_built() -> None:
    assert SETUPTOOLS["package-dir"] == {"doctriage_core": "shared/doctriage_core"}
    # template.yaml's CoreLayer builds shared/ with shared/Makefile, which copies doctriage_core.
    assert "cp -R doctriage_core" in (PROJECT_ROOT / "shared" / "Makefile").read_text()
