"""The architecture's arrows (DESIGN §2), enforced on the source with ``ast``.

- every package imports only the packages its row of the table allows (``ops`` may import
  everything; ``ordinaut``, the public client, only httpx and the standard library);
- ``engine`` does no network or database I/O: no driver, HTTP or MCP library, no socket;
- only ``store`` imports psycopg and holds SQL statements;
- only ``ops/cli.py`` reads the environment (and the public client's configuration module,
  which reads ``ORDINAUT_URL``/``ORDINAUT_TOKEN`` as every SDK reads its own variables);
- no import cycle between modules (lazy imports inside functions count too).

The checker is tested against sources that break each rule, so a rule that silently stopped
matching would fail here as well.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PACKAGES = (
    "engine",
    "store",
    "api",
    "scheduler",
    "workers",
    "observability",
    "ordinaut",
    "ops",
    "catalogs",
    "migrations",
)
# Which of our packages each package may import (DESIGN §2).
ALLOWED_INTERNAL: dict[str, frozenset[str]] = {
    "engine": frozenset(),
    "store": frozenset({"engine"}),
    # The one password-masking helper (engine/redaction.py) serves the logs too.
    "observability": frozenset({"engine"}),
    "api": frozenset({"engine", "store", "observability", "ordinaut"}),
    "scheduler": frozenset({"engine", "store", "observability"}),
    "workers": frozenset({"engine", "store", "observability"}),
    "ordinaut": frozenset(),
    "ops": frozenset(PACKAGES),
}
# Third-party libraries that are I/O or frameworks, and who may use them. A library not
# listed here is a pure helper anyone may use (pydantic, prometheus_client, jmespath ...).
RESTRICTED_LIBRARIES: dict[str, frozenset[str]] = {
    "psycopg": frozenset({"store"}),
    "psycopg_pool": frozenset({"store"}),
    "httpx": frozenset({"api", "workers", "ordinaut", "ops"}),
    "mcp": frozenset({"api", "workers", "ops"}),
    "fastapi": frozenset({"api", "ops"}),
    "starlette": frozenset({"api", "ops"}),
    "uvicorn": frozenset({"api", "ops"}),
    "jinja2": frozenset({"api"}),
    "apscheduler": frozenset({"scheduler"}),
}
# The public client: the standard library and httpx, nothing else.
ORDINAUT_THIRD_PARTY = frozenset({"httpx"})
# Standard-library modules that talk to the network or other processes: not in the engine.
ENGINE_FORBIDDEN_STDLIB = (
    "socket",
    "ssl",
    "http.client",
    "http.server",
    "urllib.request",
    "subprocess",
    "asyncio.subprocess",
    "sqlite3",
    "smtplib",
    "ftplib",
)
ENVIRONMENT_READERS = frozenset({"ops/cli.py", "ordinaut/_config.py"})
# A statement, not prose: the keyword followed by what makes it SQL.
SQL_STATEMENT = re.compile(
    r"\bSELECT\b[\s\S]+\bFROM\b|\bINSERT\s+INTO\b|\bUPDATE\s+\w+\s+SET\b|\bDELETE\s+FROM\b"
    r"|\b(CREATE|ALTER|DROP)\s+(TABLE|INDEX|VIEW|DATABASE)\b|\bLISTEN\s+\w+|\bNOTIFY\s+\w+"
)


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    rule: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}"


def source_files() -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted((REPO / package).rglob("*.py"))


def module_name(relative: str) -> str:
    parts = relative.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(tree: ast.Module, module: str, is_package: bool) -> Iterator[tuple[str, int]]:
    """Absolute names of every module imported anywhere in ``tree`` (outside ``if
    TYPE_CHECKING:``), with their line numbers; ``from x import y`` yields ``x.y`` too, as
    ``y`` may be a module."""
    for node in _nodes_outside_type_checking(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node, module, is_package)
            if base == "__future__":
                continue
            if base:
                yield base, node.lineno
            for alias in node.names:
                yield f"{base}.{alias.name}" if base else alias.name, node.lineno


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    keep = len(parts) - node.level + (1 if is_package else 0)
    base = parts[:keep]
    return ".".join([*base, node.module] if node.module else base)


def _nodes_outside_type_checking(tree: ast.AST) -> Iterator[ast.AST]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for other in node.orelse:
                yield from _walk(other)
            continue
        yield node
        yield from _nodes_outside_type_checking(node)


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    yield node
    yield from _nodes_outside_type_checking(node)


def check_source(relative: str, source: str) -> list[Violation]:
    """Every rule broken by one file (``relative`` like ``engine/pipeline.py``)."""
    tree = ast.parse(source)
    package = relative.split("/")[0]
    module = module_name(relative)
    is_package = relative.endswith("__init__.py")
    found: list[Violation] = []
    for name, line in imported_modules(tree, module, is_package):
        rule = _import_rule(package, name)
        if rule:
            found.append(Violation(relative, line, rule))
    found += _sql_violations(relative, package, tree)
    found += _environment_violations(relative, tree)
    return sorted(set(found), key=lambda v: (v.line, v.rule))


def _import_rule(package: str, name: str) -> str | None:
    top = name.split(".")[0]
    if top in ALLOWED_INTERNAL or top in ("catalogs", "migrations"):
        allowed = ALLOWED_INTERNAL.get(package, frozenset(PACKAGES))
        if top != package and top not in allowed:
            return f"{package} may not import {top} ({name})"
        return None
    if top in RESTRICTED_LIBRARIES and package not in RESTRICTED_LIBRARIES[top]:
        return f"{package} may not import {top} ({name})"
    is_stdlib = top in sys.stdlib_module_names
    if package == "engine" and is_stdlib and _within(name, ENGINE_FORBIDDEN_STDLIB):
        return f"engine does no network or process I/O ({name})"
    if package == "ordinaut" and not is_stdlib and top not in ORDINAUT_THIRD_PARTY:
        return f"ordinaut (the public client) imports only httpx and the standard library ({name})"
    return None


def _within(name: str, modules: tuple[str, ...]) -> bool:
    return any(name == m or name.startswith(m + ".") for m in modules)


def _sql_violations(relative: str, package: str, tree: ast.Module) -> list[Violation]:
    if package == "store":
        return []
    docstrings = _docstring_nodes(tree)
    return [
        Violation(relative, node.lineno, "SQL statement outside store/")
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and SQL_STATEMENT.search(node.value)
    ]


def _docstring_nodes(tree: ast.Module) -> set[int]:
    owners = [tree] + [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    ]
    found: set[int] = set()
    for owner in owners:
        body = owner.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            found.add(id(body[0].value))
    return found


def _environment_violations(relative: str, tree: ast.Module) -> list[Violation]:
    if relative in ENVIRONMENT_READERS:
        return []
    return [
        Violation(relative, node.lineno, "reads the environment outside ops/cli.py")
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr in ("environ", "getenv", "environb")
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    ]


def import_graph() -> dict[str, set[str]]:
    """Module → the modules of ours it imports."""
    ours: dict[str, Path] = {}
    for path in source_files():
        ours[module_name(str(path.relative_to(REPO)))] = path
    graph: dict[str, set[str]] = {}
    for module, path in ours.items():
        tree = ast.parse(path.read_text())
        is_package = path.name == "__init__.py"
        targets = {name for name, _ in imported_modules(tree, module, is_package) if name in ours}
        graph[module] = targets - {module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (a list of modules, first = last), or None.

    A package's ``__init__`` importing its own submodules is not a cycle: importing a
    submodule always runs its package first, so those edges are left out."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target.startswith(node + "."):
                continue
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_every_module_keeps_the_layer_rules():
    violations = [
        violation
        for path in source_files()
        for violation in check_source(str(path.relative_to(REPO)), path.read_text())
    ]
    assert violations == [], "\n".join(map(str, violations))


def test_no_import_cycle_between_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle or [])


@pytest.mark.parametrize(
    ("relative", "source", "rule"),
    [
        ("engine/x.py", "import psycopg\n", "engine may not import psycopg"),
        ("engine/x.py", "from store import tasks\n", "engine may not import store"),
        ("engine/x.py", "def f():\n    import httpx\n", "engine may not import httpx"),
        ("engine/x.py", "from mcp import Client\n", "engine may not import mcp"),
        ("engine/x.py", "import socket\n", "engine does no network"),
        ("engine/x.py", "from urllib.request import urlopen\n", "engine does no network"),
        ("engine/x.py", "from ops.cli import main\n", "engine may not import ops"),
        ("engine/x.py", "from workers import process\n", "engine may not import workers"),
        ("api/x.py", "from ops import settings\n", "api may not import ops"),
        ("scheduler/x.py", "from ops.cli import main\n", "scheduler may not import ops"),
        ("workers/x.py", "from ops import supervisor\n", "workers may not import ops"),
        ("workers/x.py", "from api.app import create_app\n", "workers may not import api"),
        ("api/x.py", "import psycopg\n", "api may not import psycopg"),
        ("ops/x.py", "from psycopg import sql\n", "ops may not import psycopg"),
        ("scheduler/x.py", "from psycopg_pool import X\n", "scheduler may not import psycopg"),
        ("store/x.py", "from api import deps\n", "store may not import api"),
        ("ordinaut/x.py", "import pydantic\n", "ordinaut (the public client) imports only"),
        ("ordinaut/x.py", "from engine import errors\n", "ordinaut may not import engine"),
        ("workers/x.py", "Q = 'SELECT id FROM tasks'\n", "SQL statement outside store/"),
        ("api/x.py", "Q = '''\nDELETE FROM runs\n'''\n", "SQL statement outside store/"),
        ("api/x.py", "import os\nX = os.environ['A']\n", "reads the environment"),
        ("workers/x.py", "import os\nX = os.getenv('A')\n", "reads the environment"),
        ("engine/x.py", "from . import y\nfrom .. import store\n", "engine may not import store"),
    ],
)
def test_the_checker_reports(relative: str, source: str, rule: str):
    violations = check_source(relative, source)
    assert any(rule in v.rule for v in violations), violations


@pytest.mark.parametrize(
    ("relative", "source"),
    [
        ("store/x.py", "import psycopg\nQ = 'SELECT id FROM tasks'\n"),
        ("ops/x.py", "from api.app import create_app\nfrom workers import process\n"),
        ("ops/cli.py", "import os\nX = os.environ\n"),
        ("api/x.py", "from ordinaut import AsyncClient\nimport fastapi\n"),
        ("engine/x.py", "import asyncio\nimport jmespath\nfrom engine import errors\n"),
        ("engine/x.py", "from urllib.parse import unquote\nfrom http import HTTPStatus\n"),
        ("engine/x.py", '"""Leases rows with SELECT ... FOR UPDATE SKIP LOCKED."""\n'),
        ("workers/x.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import api\n"),
        ("ordinaut/x.py", "import httpx\nimport json\n"),
    ],
)
def test_the_checker_accepts(relative: str, source: str):
    assert check_source(relative, source) == []


def test_the_cycle_finder_finds_a_lazy_loop_and_ignores_package_inits():
    loop = {"ops.a": {"ops.b"}, "ops.b": {"ops.a"}}
    assert find_cycle(loop) == ["ops.a", "ops.b", "ops.a"]
    assert find_cycle({"ops": {"ops.a"}, "ops.a": {"ops"}}) is None
