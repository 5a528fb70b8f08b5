from django.contrib import admin

from server.core.admin_base import ReadOnlyAdmin

from .models import RecoveryKey


@admin.register(RecoveryKey)
class RecoveryKeyAdmin(ReadOnlyAdmin):
    """The recovery certificate and its history. Enabling needs the CSR made offline and
    disabling changes what every client writes: both are `manage.py recovery enable|disable`,
    audited. The private key is never on the server, so nothing here can open data."""

    list_display = (
        "key_id",
        "status",
        "fingerprint",
        "requested_by",
        "created_at",
        "enabled_at",
        "disabled_at",
        "disabled_by",
    )
    list_filter = ("status",)
    fields = (
        "key_id",
        "status",
        "refusal_message",
        "fingerprint",
        "serial",
        "certificate_pem",
        "requested_by",
        "created_at",
        "enabled_at",
        "disabled_at",
        "disabled_by",
    )
    readonly_fields = fields
