from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from server.accounts.models import AppPassword
from server.accounts.services import app_password_create


class Command(BaseCommand):
    help = "Manage Nextcloud-style app passwords."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create one and print it once on stdout")
        create.add_argument("uid")
        create.add_argument("--name", default="command line")
        listing = sub.add_parser("list", help="list a user's app passwords (never their values)")
        listing.add_argument("uid")
        revoke = sub.add_parser("revoke", help="revoke one by id")
        revoke.add_argument("uid")
        revoke.add_argument("id", type=int)

    def handle(self, *args, action, uid, **options):
        user = get_user_model().objects.filter(username=uid).first()
        if user is None:
            raise CommandError(f"no user {uid!r}")
        if action == "create":
            record, clear = app_password_create(user=user, name=options["name"])
            self.stderr.write(f"created app password {record.pk} for {uid}; it is shown only once")
            self.stdout.write(clear)
        elif action == "list":
            for record in AppPassword.objects.filter(user=user):
                used = record.last_used_at.isoformat() if record.last_used_at else "never"
                self.stdout.write(f"{record.pk}\t{record.name}\t…{record.hint}\tlast used {used}")
        else:
            deleted, _ = AppPassword.objects.filter(user=user, pk=options["id"]).delete()
            if not deleted:
                raise CommandError(f"no app password {options['id']} for {uid!r}")
            self.stderr.write(f"revoked app password {options['id']}")
