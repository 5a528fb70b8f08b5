"""One command to run the stack with embedded defaults: migrate, first admin, then the web
(gunicorn) and the certificate signing worker (Celery, queue `hsm`, on the configured broker:
the filesystem by default) as two processes. Only the worker gets the PKCS#11 settings.

`serve --ephemeral` runs a throw-away stack for test suites instead (server.testkit.ephemeral):
its own temporary data dir and database, one JSON line on stdout, nothing left after SIGTERM."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Prepare the database and static files, create the first admin (password printed once "
        "unless E2EE_ADMIN_PASSWORD is set), then serve server.wsgi under gunicorn next to the "
        "certificate signing worker."
    )

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=os.environ.get("E2EE_BIND", "127.0.0.1:8000"))
        parser.add_argument("--workers", type=int, default=int(os.environ.get("E2EE_WORKERS", "2")))
        parser.add_argument(
            "--no-signing-worker",
            action="store_true",
            help="do not start the signing worker here (it runs elsewhere, e.g. docker-compose)",
        )
        ephemeral = parser.add_argument_group("ephemeral test stack (see server.testkit)")
        ephemeral.add_argument(
            "--ephemeral", action="store_true", help="a throw-away stack; prints one JSON line"
        )
        ephemeral.add_argument("--seed", type=Path, help="users, folders, shares (YAML/JSON)")
        ephemeral.add_argument("--port", type=int, default=0, help="with --ephemeral; 0: free")
        ephemeral.add_argument(
            "--inline-signing",
            action="store_true",
            help="with --ephemeral: the web process signs, no worker",
        )

    def handle(self, *args, bind, workers, no_signing_worker, ephemeral, **options):
        if ephemeral:
            from server.testkit.ephemeral import Options, serve_ephemeral

            signing = "inline" if options["inline_signing"] else "worker"
            sys.exit(
                serve_ephemeral(
                    Options(seed=options["seed"], port=options["port"], signing=signing)
                )
            )
        if options["seed"] or options["inline_signing"] or options["port"]:
            raise CommandError("--seed, --port and --inline-signing go with --ephemeral")
        call_command("bootstrap")
        if settings.E2EE_SIGNER == "software" and not no_signing_worker:
            from server.certificates.authority import ca_ensure_software

            ca_ensure_software()
        web_command = [
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
        ]
        self.stderr.write(f"serving on http://{bind}/ (data in {settings.DATA_DIR})")
        sys.stderr.flush()
        if no_signing_worker:
            os.execvp(sys.executable, web_command)  # noqa: S606 - our arguments
        sys.exit(self._supervise(web_command))

    def _supervise(self, web_command: list[str]) -> int:
        """Run web and signing worker; stop both when either ends or on SIGTERM/SIGINT."""
        worker_command = [
            sys.executable, "-m", "celery", "-A", "server.celery:app", "worker",
            "-Q", "hsm", "-c", "1", "-l", "WARNING",
            "--without-mingle", "--without-gossip", "--without-heartbeat",
        ]  # fmt: skip
        web_env = {k: v for k, v in os.environ.items() if not k.startswith("PKCS11_")}
        worker = subprocess.Popen(worker_command)  # noqa: S603 - our arguments
        web = subprocess.Popen(web_command, env=web_env)  # noqa: S603 - our arguments
        children = (web, worker)

        def stop(signum, frame):
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        while all(child.poll() is None for child in children):
            time.sleep(0.2)
        stop(None, None)
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        return web.returncode or 0
