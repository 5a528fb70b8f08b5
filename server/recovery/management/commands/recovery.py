"""`manage.py recovery enable --csr FILE`, `recovery disable`, `recovery status`."""

from __future__ import annotations

import getpass
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from server.errors import APIError
from server.recovery import services
from server.recovery.models import RecoveryKey
from server.recovery.selectors import recovery_key_enabled


def _fingerprint(hex_digest: str) -> str:
    return " ".join(hex_digest[i : i + 4] for i in range(0, len(hex_digest), 4))


class Command(BaseCommand):
    help = "The offline recovery key: certify it (CSR from `e2ee recovery create`), disable it."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        enable = sub.add_parser("enable", help="have the CA certify the recovery key")
        enable.add_argument("--csr", required=True, type=Path, help="recovery.csr.pem")
        enable.add_argument("--timeout", type=float, default=30.0, help="seconds to wait")
        sub.add_parser("disable", help="stop advertising the recovery key")
        sub.add_parser("status", help="the enabled recovery key, if any")
        for action in sub.choices.values():
            action.add_argument(
                "--actor", default=None, help="who to record in the audit log (default: OS user)"
            )

    def handle(self, *args, action, actor=None, **options):
        actor = f"admin:{actor or getpass.getuser()}"
        try:
            if action == "enable":
                self._enable(options["csr"], actor, options["timeout"])
            elif action == "disable":
                row = services.recovery_disable(actor=actor)
                self.stdout.write(f"disabled the recovery key {row.key_id}")
                self.stdout.write(
                    "clients leave it out of what they write from now on; "
                    "what it could read before stays readable to it"
                )
            else:
                self._status()
        except APIError as error:
            raise CommandError(str(error.detail)) from None

    def _enable(self, csr: Path, actor: str, timeout: float) -> None:
        try:
            pem = csr.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"cannot read {csr}: {error}") from None
        row = services.recovery_enable(csr_pem=pem, actor=actor, timeout=timeout)
        self._show(row)
        self.stdout.write(
            "clients now add this key to every folder they write, and warn their users"
        )

    def _show(self, row: RecoveryKey) -> None:
        self.stdout.write(f"recovery key: {row.key_id}")
        self.stdout.write(f"serial: {row.serial}")
        self.stdout.write(f"fingerprint (SHA-256 of the DER): {_fingerprint(row.fingerprint)}")

    def _status(self) -> None:
        row = recovery_key_enabled()
        if row is None:
            self.stdout.write("recovery: disabled")
            return
        self.stdout.write("recovery: enabled")
        self._show(row)
