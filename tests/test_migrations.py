"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_upgrade_from_empty_matches_models(tmp_path):
    env = dict(os.environ, AUTOSEQ_ENV="development", DATABASE_URL=f"sqlite:///{tmp_path}/m.db")
    flask = [sys.executable, "-m", "flask", "--app", "wsgi", "db"]
    upgrade = subprocess.run([*flask, "upgrade"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert upgrade.returncode == 0, upgrade.stderr
    check = subprocess.run([*flask, "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No new upgrade operations detected" in check.stdout + check.stderr
