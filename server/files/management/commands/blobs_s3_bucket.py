"""Check that the S3 bucket of the E2EE_S3_* settings is reachable with the configured keys;
with --create, create it first if it does not exist (every web replica may run this at start:
a bucket created meanwhile by another one is fine)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from server.files.blobstore_s3 import S3BlobStore, S3Config, S3StoreError


class Command(BaseCommand):
    help = "Check the S3 bucket (E2EE_S3_*); --create makes it if missing."

    def add_arguments(self, parser):
        parser.add_argument("--create", action="store_true")

    def handle(self, *args, create: bool, **options):
        try:
            store = S3BlobStore(S3Config.from_settings(settings.BLOB_S3))
            if create:
                store.create_bucket()
            store.check()
        except S3StoreError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"bucket {store.config.bucket!r} at {store.config.endpoint_url} is ready")
