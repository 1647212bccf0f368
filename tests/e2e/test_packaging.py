"""A non-editable install carries what the code reads next to its packages: the migrations
(``store/migrate.py``) and the tool catalog (``engine/catalog.py``), besides the vendored
Swagger UI."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_holds_migrations_catalog_and_docs_assets(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), ROOT],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("ordinaut-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    migrations = {p.name for p in (ROOT / "migrations").glob("*.sql")}
    assert migrations and {f"migrations/{m}" for m in migrations} <= names
    assert "catalogs/tools.json" in names
    assert any(n.startswith("api/static/swagger-ui/") for n in names)
    assert not any(n.startswith("tests/") for n in names)
