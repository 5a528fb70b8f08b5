import json

from django.core.management.base import BaseCommand, CommandError

from server.audit.models import AuditEvent
from server.audit.services import audit_verify


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
        sub.add_parser(
            "verify", help="exit 0 if the chain is intact, else name the first bad event"
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
        self.stdout.write(f"audit log intact: {checked} event(s)")
