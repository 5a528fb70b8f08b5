"""One command to run the stack with embedded defaults: migrate, first admin, gunicorn."""

import os
import secrets
import sys

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Prepare the database and static files, create the first admin (password printed once "
        "unless E2EE_ADMIN_PASSWORD is set), then serve server.wsgi under gunicorn."
    )

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=os.environ.get("E2EE_BIND", "127.0.0.1:8000"))
        parser.add_argument("--workers", type=int, default=int(os.environ.get("E2EE_WORKERS", "2")))

    def handle(self, *args, bind, workers, **options):
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        self._ensure_admin()
        self.stderr.write(f"serving on http://{bind}/ (data in {settings.DATA_DIR})")
        sys.stderr.flush()
        os.execvp(  # noqa: S606 - replace this process with gunicorn, arguments are ours
            sys.executable,
            [
                sys.executable,
                "-m",
                "gunicorn",
                "server.wsgi:application",
                "--bind",
                bind,
                "--workers",
                str(workers),
                "--worker-class",
                "gthread",
                "--threads",
                "4",
                "--timeout",
                "300",
                "--access-logfile",
                "-",
            ],
        )

    def _ensure_admin(self) -> None:
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return
        username = os.environ.get("E2EE_ADMIN_USER", "admin")
        password = os.environ.get("E2EE_ADMIN_PASSWORD", "")
        User.objects.create_superuser(
            username=username,
            email="",
            password=password or (generated := secrets.token_urlsafe(18)),
        )
        if password:
            self.stderr.write(
                f"created admin {username!r} with the password from E2EE_ADMIN_PASSWORD"
            )
        else:
            self.stderr.write(
                f"created admin {username!r} with password: {generated}\n"
                "  (shown only this once; sign in at /admin/ and change it)"
            )
