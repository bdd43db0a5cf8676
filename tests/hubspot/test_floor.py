"""The HubSpot package stands on its own floor: it speaks HTTP to HubSpot and knows nothing of
Flask, the database, the models or the services (docs/architecture.md, "Floors"). And every
HubSpot call goes through its one ``Transport``: nothing else in ``autoseq/`` imports an HTTP
client."""

from __future__ import annotations

import ast
import pathlib
import sys

import autoseq

ROOT = pathlib.Path(autoseq.__file__).parent
# What autoseq/hubspot/ may import besides the standard library and itself.
ALLOWED_THIRD_PARTY = {"requests", "redis", "cryptography", "orjson"}
STDLIB = sys.stdlib_module_names
HTTP_CLIENTS = {"requests", "httpx", "urllib3", "aiohttp", "http.client", "urllib.request"}


def _imports(path: pathlib.Path) -> list[tuple[int, str]]:
    """(relative level, module) of every import in ``path``, wherever it stands in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((0, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
    return found


def _hubspot_modules() -> list[pathlib.Path]:
    modules = sorted((ROOT / "hubspot").rglob("*.py"))
    assert len(modules) >= 8  # the walk really found the package
    return modules


def _violations(path: pathlib.Path) -> list[str]:
    """Imports of ``path`` that leave the package for anything but the standard library and
    ``ALLOWED_THIRD_PARTY`` (``..models``, ``..extensions``, ``flask``, ``sqlalchemy``...)."""
    bad = []
    for level, module in _imports(path):
        top = module.split(".")[0]
        if level == 1 or (level == 0 and (top in STDLIB or top in ALLOWED_THIRD_PARTY)):
            continue
        bad.append(f"{'.' * level}{module}")
    return bad


def test_the_hubspot_package_imports_neither_flask_nor_the_database_nor_the_models():
    bad = {str(p.relative_to(ROOT)): _violations(p) for p in _hubspot_modules()}
    assert {name: found for name, found in bad.items() if found} == {}


def test_the_floor_check_catches_what_it_forbids(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from __future__ import annotations\n"
        "import logging\n"
        "from redis import Redis\n"
        "from .errors import HubSpotError\n"
        "from flask import current_app\n"
        "import sqlalchemy.orm\n"
        "from ..extensions import db\n"
        "def f():\n    from ..models import HubSpotConnection\n"
        "from autoseq.services import tokens\n"
    )
    assert sorted(_violations(sample)) == sorted(
        ["flask", "sqlalchemy.orm", "..extensions", "..models", "autoseq.services"]
    )


def test_only_the_transport_speaks_http():
    speakers = sorted(
        str(path.relative_to(ROOT))
        for path in ROOT.rglob("*.py")
        if any(
            level == 0 and (module in HTTP_CLIENTS or module.split(".")[0] in HTTP_CLIENTS)
            for level, module in _imports(path)
        )
    )
    assert speakers == ["hubspot/http.py"]
