"""First-start preparation, safe to run on every start: database, static files, first admin.

`serve` runs it before starting processes; the docker-compose `web` service runs it before
gunicorn. The admin is created only while no superuser exists, its password printed once unless
E2EE_ADMIN_PASSWORD (or E2EE_ADMIN_PASSWORD_FILE) gives it."""

import os
import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand


def _admin_password_from_environment() -> str:
    path = os.environ.get("E2EE_ADMIN_PASSWORD_FILE", "")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get("E2EE_ADMIN_PASSWORD", "")


class Command(BaseCommand):
    help = "Migrate, collect static files and create the first admin (only once)."

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        self._ensure_admin()

    def _ensure_admin(self) -> None:
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return
        username = os.environ.get("E2EE_ADMIN_USER", "admin")
        password = _admin_password_from_environment()
        generated = secrets.token_urlsafe(18)
        User.objects.create_superuser(username=username, email="", password=password or generated)
        if password:
            self.stderr.write(f"created admin {username!r} with the password from the environment")
        else:
            self.stderr.write(
                f"created admin {username!r} with password: {generated}\n"
                "  (shown only this once; sign in at /admin/ and change it)"
            )
