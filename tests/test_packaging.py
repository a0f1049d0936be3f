"""What a plain `pip install .` brings: every third-party module the product imports (at the top
of a module or inside a function) comes from a distribution pyproject's `dependencies` declare,
and every declared distribution is used. The test extras do not count: they are not installed
by `make run` or by a user's `pip install caulbart`.
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("aggregator", "web")

# Declared distributions that no `import` of the product names, and why each is needed.
USED_WITHOUT_IMPORT = {
    # SQLAlchemy's driver for postgresql+psycopg:// URLs, loaded by name from the URL.
    "psycopg": "the PostgreSQL driver",
    # lxml.html.clean, which trafilatura's fallback extractor (jusText) imports.
    "lxml-html-clean": "trafilatura's jusText fallback",
    # The client the limits library loads for a redis:// CAULBART_RATELIMIT_STORAGE.
    "redis": "the shared comment rate limit of several web processes",
}


def distribution_name(requirement: str) -> str:
    """PEP 503 normalised name of a PEP 508 requirement ("Flask-Limiter>=3.8" -> flask-limiter)."""
    name = re.split(r"[\s<>=!~;\[(@]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {distribution_name(requirement) for requirement in project["dependencies"]}


def imported_modules() -> dict[str, set[str]]:
    """Top-level names of third-party modules the product imports -> the files importing them."""
    ours = set(PRODUCT)
    found: dict[str, set[str]] = {}
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top in ours or top == "__future__":
                        continue
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def providers() -> dict[str, set[str]]:
    """Installed distributions (normalised names) providing each top-level module."""
    return {
        module: {distribution_name(dist) for dist in dists}
        for module, dists in metadata.packages_distributions().items()
    }


def test_every_imported_module_is_a_declared_dependency() -> None:
    runtime = declared()
    provided_by = providers()
    undeclared = {
        module: sorted(files)
        for module, files in imported_modules().items()
        if not provided_by.get(module, {module}) & runtime
    }
    assert not undeclared, (
        f"imported by the product but not in pyproject's dependencies: {undeclared}"
    )


def test_every_declared_dependency_is_imported_or_needed() -> None:
    modules_of: dict[str, set[str]] = {}
    for module, dists in providers().items():
        for dist in dists:
            modules_of.setdefault(dist, set()).add(module)
    imported = set(imported_modules())
    unused = sorted(
        dist
        for dist in declared() - set(USED_WITHOUT_IMPORT)
        if not modules_of.get(dist, set()) & imported
    )
    assert not unused, f"declared in pyproject's dependencies but never imported: {unused}"


def test_imports_inside_functions_are_seen() -> None:
    """The lazy imports (trafilatura, waitress, gunicorn) count like those at a module's top."""
    modules = imported_modules()
    assert "aggregator/ingest/fulltext.py" in modules["trafilatura"]
    assert "aggregator/cli/runner.py" in modules["gunicorn"]
