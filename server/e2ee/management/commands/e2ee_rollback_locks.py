from datetime import timedelta

from django.core.management.base import BaseCommand

from server.e2ee.locks import ROLLBACK_AFTER, locks_roll_back_stale


class Command(BaseCommand):
    help = "Revert and remove E2EE locks unused for 24 hours (crashed clients)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=int,
            default=int(ROLLBACK_AFTER.total_seconds()),
            help="seconds since the lock was last used (default 86400)",
        )

    def handle(self, *args, older_than, **options):
        folders = locks_roll_back_stale(older_than=timedelta(seconds=older_than))
        self.stderr.write(f"rolled back {len(folders)} stale lock(s)")
