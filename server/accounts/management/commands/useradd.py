import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Create a user. The password comes from --password-file, else a random one is printed once."
    )

    def add_arguments(self, parser):
        parser.add_argument("uid", help="Nextcloud user id (login name)")
        parser.add_argument("--password-file", type=Path, help="file holding the password")
        parser.add_argument("--display-name", default="")
        parser.add_argument("--email", default="")
        parser.add_argument("--admin", action="store_true", help="staff + superuser (Django admin)")

    def handle(self, *args, uid, password_file, display_name, email, admin, **options):
        User = get_user_model()
        if User.objects.filter(username=uid).exists():
            raise CommandError(f"user {uid!r} already exists")
        if ":" in uid or "/" in uid:
            raise CommandError("a user id cannot contain ':' or '/'")
        generated = password_file is None
        password = secrets.token_urlsafe(18) if generated else password_file.read_text().strip()
        if not password:
            raise CommandError("the password file is empty")
        User.objects.create_user(
            username=uid,
            password=password,
            email=email,
            first_name=display_name,
            is_staff=admin,
            is_superuser=admin,
        )
        self.stderr.write(f"created user {uid}")
        if generated:
            self.stdout.write(password)
