"""docker-compose.yml as Debian's docker-compose resolves it (no Docker engine needed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from tests.conftest import require

ROOT = Path(__file__).resolve().parents[1]
SECRETS = ("postgres_password", "database_url", "admin_password", "hsm_pin", "hsm_so_pin")


def compose_config(work: Path) -> dict:
    """`docker-compose config` of the project's file, with placeholder secrets, as a dict."""
    require(shutil.which("docker-compose") is not None, "docker-compose (Debian package)")
    for name in ("docker-compose.yml", "Dockerfile", ".env.example"):
        shutil.copy(ROOT / name, work / name)
    shutil.copy(ROOT / ".env.example", work / ".env")
    (work / "secrets").mkdir(exist_ok=True)
    for name in SECRETS:
        (work / "secrets" / name).write_text("placeholder\n")
    result = subprocess.run(
        ["docker-compose", "config"], cwd=work, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)
