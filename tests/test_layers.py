"""Each layer imports only the layers below it (docs/architecture.md):

    gateway  ->  projections  ->  eventstore
        \\            \\
         +------------+------->  domain  (pure: no I/O library, nothing of ours)

Read from the source with ``ast``, so an import inside a function counts as much as one at
the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# package -> packages (ours or I/O libraries) none of its modules may import
FORBIDDEN: dict[str, frozenset[str]] = {
    "domain": frozenset({"gateway", "projections", "eventstore", "asyncpg", "aiohttp", "structlog"}),
    "eventstore": frozenset({"gateway", "projections", "domain", "aiohttp"}),
    "projections": frozenset({"gateway", "aiohttp"}),
}


def imported_packages(source: str) -> set[tuple[int, str]]:
    found: set[tuple[int, str]] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update((node.lineno, alias.name.split(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.lineno, node.module.split(".")[0]))
    return found


def violations(package: str) -> list[str]:
    forbidden = FORBIDDEN[package]
    found = []
    for module in sorted((ROOT / package).rglob("*.py")):
        for line, name in sorted(imported_packages(module.read_text())):
            if name in forbidden:
                found.append(f"{module.relative_to(ROOT)}:{line} imports {name}")
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_layer_imports_only_the_layers_below_it(package: str) -> None:
    assert (ROOT / package / "__init__.py").exists()
    assert violations(package) == []


def test_the_check_sees_imports_anywhere_in_a_module() -> None:
    source = "import os\n\ndef late():\n    from gateway.http import app\n    import aiohttp.web\n"
    assert imported_packages(source) == {(1, "os"), (4, "gateway"), (5, "aiohttp")}


def test_relative_imports_stay_inside_their_package() -> None:
    # A relative import cannot leave its top-level package, so it never crosses a layer.
    assert imported_packages("from . import codec\nfrom .. import x\n") == set()


def driver_errors_caught(source: str) -> list[int]:
    """Lines of ``except`` clauses that name one of asyncpg's classes."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ExceptHandler) and node.type is not None:
            names = [n for n in ast.walk(node.type) if isinstance(n, ast.Name) and n.id == "asyncpg"]
            if names:
                lines.append(node.lineno)
    return lines


def test_the_gateway_catches_database_errors_by_the_stores_names() -> None:
    # The driver's errors are translated in eventstore (eventstore/errors.py) and nowhere else:
    # the gateway catches DATABASE_ERRORS, DRIVER_ERRORS or the store's own errors.
    found = [f"{module.relative_to(ROOT)}:{line}" for module in sorted((ROOT / "gateway").rglob("*.py"))
             for line in driver_errors_caught(module.read_text())]
    assert found == []


def test_the_driver_error_check_sees_tuples_and_attributes() -> None:
    source = "try:\n    pass\nexcept (OSError, asyncpg.PostgresError):\n    pass\nexcept KeyError:\n    pass\n"
    assert driver_errors_caught(source) == [3]
