"""Settings come from the environment; checked in fresh interpreters so nothing leaks between."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'key': s.SECRET_KEY, 'db': str(s.DATABASES['default']['NAME']), "
    "'engine': s.DATABASES['default']['ENGINE'], 'hosts': s.ALLOWED_HOSTS, "
    "'broker': s.CELERY_BROKER_URL, 'blobs': str(s.BLOB_DIR), "
    "'proxy': s.SECURE_PROXY_SSL_HEADER, 'secure_cookies': s.SESSION_COOKIE_SECURE and "
    "s.CSRF_COOKIE_SECURE, 'hsts': s.SECURE_HSTS_SECONDS}))"
)


def settings_in(env: dict[str, str]) -> dict:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DATABASE_URL", "ALLOWED_HOSTS", "CELERY_BROKER_URL"}
    }
    clean.update(env, DJANGO_SETTINGS_MODULE="server.settings")
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=clean,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def test_secret_key_generated_once_with_owner_only_permissions(tmp_path):
    first = settings_in({"E2EE_DATA_DIR": str(tmp_path)})
    key_file = tmp_path / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first["key"]) >= 50
    assert settings_in({"E2EE_DATA_DIR": str(tmp_path)})["key"] == first["key"]


def test_secret_key_from_environment_wins_and_writes_no_file(tmp_path):
    got = settings_in({"E2EE_DATA_DIR": str(tmp_path), "SECRET_KEY": "x" * 60})
    assert got["key"] == "x" * 60
    assert not (tmp_path / "secret_key").exists()


def test_embedded_defaults_live_in_the_data_dir(tmp_path):
    got = settings_in({"E2EE_DATA_DIR": str(tmp_path)})
    assert got["engine"] == "django.db.backends.sqlite3"
    assert Path(got["db"]) == tmp_path / "db.sqlite3"
    assert Path(got["blobs"]) == tmp_path / "blobs"
    assert got["broker"] == "filesystem://"


def test_database_hosts_and_broker_from_environment(tmp_path):
    got = settings_in(
        {
            "E2EE_DATA_DIR": str(tmp_path),
            "DATABASE_URL": "postgres://e2ee@db.example:5432/e2ee",
            "ALLOWED_HOSTS": "cloud.example,127.0.0.1",
            "CELERY_BROKER_URL": "redis://127.0.0.1:6379/3",
        }
    )
    assert got["engine"] == "django.db.backends.postgresql"
    assert got["db"] == "e2ee"
    assert got["hosts"] == ["cloud.example", "127.0.0.1"]
    assert got["broker"] == "redis://127.0.0.1:6379/3"


def test_plain_http_by_default(tmp_path):
    got = settings_in({"E2EE_DATA_DIR": str(tmp_path)})
    assert got["proxy"] is None and got["secure_cookies"] is False and got["hsts"] == 0


def test_behind_a_tls_proxy(tmp_path):
    got = settings_in(
        {"E2EE_DATA_DIR": str(tmp_path), "E2EE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https"}
    )
    assert got["proxy"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert got["secure_cookies"] is True
    assert got["hsts"] == 31_536_000


def test_secrets_from_files_without_their_newline(tmp_path):
    (tmp_path / "key").write_text("k" * 60 + "\n")
    (tmp_path / "db").write_text("postgres://e2ee@db:5432/fromfile\n")
    got = settings_in(
        {
            "E2EE_DATA_DIR": str(tmp_path),
            "SECRET_KEY_FILE": str(tmp_path / "key"),
            "DATABASE_URL_FILE": str(tmp_path / "db"),
        }
    )
    assert got["key"] == "k" * 60
    assert got["db"] == "fromfile"


def test_json_logs_on_stdout(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "LOG_FORMAT"}
    env.update(
        E2EE_DATA_DIR=str(tmp_path), LOG_FORMAT="json", DJANGO_SETTINGS_MODULE="server.settings"
    )
    code = "import django, logging; django.setup(); logging.getLogger('e2ee').warning('started')"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    line = json.loads(out.stdout.strip().splitlines()[-1])
    assert (line["level"], line["logger"], line["message"]) == ("WARNING", "e2ee", "started")
    assert out.stderr == ""
