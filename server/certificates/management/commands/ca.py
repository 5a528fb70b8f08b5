"""`manage.py ca init --backend pkcs11|software` and `manage.py ca status`."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from hsm.signer import SignerError
from server.certificates import authority
from server.certificates.signing import BACKENDS


class Command(BaseCommand):
    help = "The certificate authority: create its key (once) and show its status."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        init = sub.add_parser("init", help="generate the CA key; refuses to replace a CA")
        init.add_argument("--backend", choices=BACKENDS, default=None)
        init.add_argument("--module", help="PKCS#11 module path (PKCS11_MODULE)")
        init.add_argument("--token-label", help="token label (PKCS11_TOKEN_LABEL)")
        init.add_argument("--pin-file", help="file holding the user PIN (PKCS11_PIN_FILE)")
        init.add_argument("--key-label", help="label of the CA key (PKCS11_KEY_LABEL)")
        init.add_argument("--key-file", help="software CA key file (E2EE_CA_KEY_FILE)")
        status = sub.add_parser("status", help="backend, key fingerprint, issued count")
        status.add_argument(
            "--check-key", action="store_true", help="also open the key (needs the PIN file)"
        )

    def handle(self, *args, action, **options):
        if action == "init":
            self._init(**options)
        else:
            self._status(check_key=options["check_key"])

    def _init(self, *, backend, module, token_label, pin_file, key_label, key_file, **_):
        backend = backend or settings.E2EE_SIGNER
        overrides = {
            "PKCS11_MODULE": module,
            "PKCS11_TOKEN_LABEL": token_label,
            "PKCS11_PIN_FILE": pin_file and str(Path(pin_file).resolve()),
            "PKCS11_KEY_LABEL": key_label,
            "E2EE_CA_KEY_FILE": key_file and str(Path(key_file).resolve()),
        }
        for name, value in overrides.items():
            if value:
                setattr(settings, name, value)
        try:
            ca = authority.ca_init(backend=backend)
        except SignerError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"created the {ca.backend} CA at {ca.location}")
        self.stdout.write(f"fingerprint (SHA-256 of the public key): {ca.fingerprint}")

    def _status(self, *, check_key: bool) -> None:
        status = authority.ca_status(check_key=check_key)
        if status is None:
            raise CommandError("no CA yet: run `manage.py ca init --backend pkcs11|software`")
        self.stdout.write(f"backend: {status.backend}")
        self.stdout.write(f"location: {status.location}")
        self.stdout.write(f"fingerprint: {status.fingerprint}")
        self.stdout.write(f"issued: {status.issued}")
        self.stdout.write(f"revoked: {status.revoked}")
        if status.key_reachable is not None:
            state = "yes" if status.key_reachable else f"NO ({status.problem})"
            self.stdout.write(f"key reachable: {state}")
            if not status.key_reachable:
                raise CommandError("the CA key cannot be opened from this process")
