import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.management.base import BaseCommand, CommandError

from server.audit.checkpoints import checkpoints_verify
from server.audit.models import AuditCheckpoint, AuditEvent
from server.audit.services import audit_verify
from server.errors import APIError


def event_json(event: AuditEvent) -> str:
    return json.dumps(
        {
            "seq": event.seq,
            "time": event.created_at.isoformat(),
            "actor": event.actor,
            "action": event.action,
            "target": event.target,
            "source_address": event.source_address,
            "outcome": event.outcome,
            "details": event.details,
            "prev_hash": event.prev_hash,
            "hash": event.hash,
        },
        sort_keys=True,
        ensure_ascii=False,
    )


class Command(BaseCommand):
    help = "The audit log: `verify` the hash chain, `export` it as JSON lines."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        verify = sub.add_parser(
            "verify",
            help="exit 0 if the chain and its checkpoints are intact, else name the "
            "first bad event",
        )
        verify.add_argument(
            "--server-key",
            type=Path,
            help="the server key (SPKI PEM) kept apart from this "
            "server; default: the key this server publishes",
        )
        export = sub.add_parser("export", help="write every event as one JSON line, oldest first")
        export.add_argument("--since-seq", type=int, default=1)

    def handle(self, *args, action, **options):
        if action == "export":
            for event in AuditEvent.objects.filter(seq__gte=options["since_seq"]).order_by("seq"):
                self.stdout.write(event_json(event))
            return
        checked, problem = audit_verify()
        if problem is not None:
            raise CommandError(
                f"audit log broken at event #{problem.seq}: {problem.reason} "
                f"({checked} event(s) before it are intact)"
            )
        signed, broken = 0, None
        if AuditCheckpoint.objects.exists():
            signed, broken = checkpoints_verify(public_key=_server_key(options["server_key"]))
        if broken is not None:
            raise CommandError(f"audit log broken: {broken.reason}")
        self.stdout.write(f"audit log intact: {checked} event(s), {signed} signed checkpoint(s)")


def _server_key(path: Path | None) -> rsa.RSAPublicKey:
    from server.certificates.authority import ca_public_key_pem

    try:
        pem = path.read_bytes() if path else ca_public_key_pem().encode()
    except (OSError, APIError) as error:
        raise CommandError(f"no server key to check the checkpoints with: {error}") from None
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise CommandError("the server key is not an RSA public key")
    return key
