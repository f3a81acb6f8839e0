"""The rooms keep their walls: read with ``ast`` from the source files, nothing imported.

- every module under doctriage_core/domain/ is pure: no boto3, botocore, httpx, powertools, and
  none of doctriage_core.adapters;
- functions/*/app.py import only doctriage_core, aws_lambda_powertools and the standard library
  (SAM flattens CodeUri: anything else would have to be in the layer);
- doctriage_core never imports doctriage_local (the layer ships without it).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "shared" / "doctriage_core"
IMPURE = ("boto3", "botocore", "httpx", "aws_lambda_powertools", "doctriage_core.adapters")


def imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-local and TYPE_CHECKING ones too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(f"{p}.") for p in packages)


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def impure_imports(path: Path) -> list[str]:
    return sorted(n for n in imports(path) if _within(n, IMPURE))


def foreign_handler_imports(path: Path) -> list[str]:
    allowed = ("doctriage_core", "aws_lambda_powertools", "__future__")
    return sorted(
        n
        for n in imports(path)
        if not _within(n, allowed) and n.split(".")[0] not in sys.stdlib_module_names
    )


@pytest.mark.parametrize("path", sorted((CORE / "domain").glob("*.py")), ids=_relative)
def test_every_domain_module_is_pure(path: Path) -> None:
    assert impure_imports(path) == []


@pytest.mark.parametrize("path", sorted(ROOT.glob("functions/*/app.py")), ids=_relative)
def test_handlers_import_only_the_layer_powertools_and_the_stdlib(path: Path) -> None:
    assert foreign_handler_imports(path) == []


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")), ids=_relative)
def test_the_layer_never_imports_the_local_tools(path: Path) -> None:
    assert [n for n in imports(path) if _within(n, ("doctriage_local",))] == []


# ------------------------------------------------------------------ each check bites


def test_the_checks_catch_what_they_forbid(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import json\nimport boto3\nfrom doctriage_core.adapters.aws import DocumentStore\n"
        "def f():\n    import httpx\n    from doctriage_local.stack import LocalStack\n"
    )
    assert impure_imports(bad) == ["boto3", "doctriage_core.adapters.aws", "httpx"]
    assert foreign_handler_imports(bad) == ["boto3", "doctriage_local.stack", "httpx"]
    assert "doctriage_local.stack" in imports(bad)
