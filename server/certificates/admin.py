"""Admin: certificates and orders read-only; revocations and re-key approvals go through the
services so who, when and why are recorded."""

from django.contrib import admin, messages
from django.http import HttpRequest

from server.accounts.models import User
from server.core.admin_base import ReadOnlyAdmin
from server.errors import APIError

from . import services
from .models import (
    Certificate,
    CertificateAuthority,
    CertificateOrder,
    CertificateRevocation,
    RekeyRequest,
)


@admin.register(Certificate)
class CertificateAdmin(ReadOnlyAdmin):
    list_display = ("key_owner", "serial", "issued_by_server", "created_at", "deleted_at")
    list_filter = ("issued_by_server",)
    search_fields = ("key_owner", "serial")
    exclude = ("user",)


@admin.register(CertificateOrder)
class CertificateOrderAdmin(ReadOnlyAdmin):
    list_display = ("id", "key_owner", "status", "created_at", "finished_at", "refusal_message")
    list_filter = ("status",)
    search_fields = ("key_owner",)
    exclude = ("user", "certificate")


@admin.register(CertificateAuthority)
class CertificateAuthorityAdmin(ReadOnlyAdmin):
    list_display = ("backend", "fingerprint", "location", "created_at")


@admin.register(CertificateRevocation)
class CertificateRevocationAdmin(admin.ModelAdmin):
    """Add a revocation to revoke: pick the certificate, give the reason."""

    list_display = ("certificate", "revoked_by", "revoked_at", "reason")
    fields = ("certificate", "reason", "revoked_by", "revoked_at")
    readonly_fields = ("revoked_by", "revoked_at")
    raw_id_fields = ("certificate",)

    def has_change_permission(self, request, obj=None):
        return obj is None

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request: HttpRequest, obj, form, change) -> None:
        assert isinstance(request.user, User)
        revocation = services.certificate_revoke(
            certificate_id=obj.certificate_id, admin=request.user, reason=obj.reason
        )
        obj.pk, obj.revoked_by, obj.revoked_at = (
            revocation.pk,
            revocation.revoked_by,
            revocation.revoked_at,
        )


@admin.action(description="Approve the selected re-key requests")
def approve(modeladmin, request, queryset):
    for rekey in queryset:
        services.rekey_request_approve(request_id=rekey.pk, admin=request.user)
        modeladmin.log_change(request, rekey, "approved")
    messages.success(request, f"Approved {queryset.count()} re-key request(s)")


@admin.register(RekeyRequest)
class RekeyRequestAdmin(admin.ModelAdmin):
    """Record why an identity gets a new key; approving (the action) records who and when."""

    list_display = (
        "key_owner",
        "reason",
        "requested_by",
        "requested_at",
        "approved_by",
        "approved_at",
        "consumed_by",
    )
    fields = ("key_owner", "reason", "requested_by", "requested_at", "approved_by", "approved_at")
    readonly_fields = ("requested_by", "requested_at", "approved_by", "approved_at")
    actions = [approve]

    def has_change_permission(self, request, obj=None):
        return obj is None

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request: HttpRequest, obj, form, change) -> None:
        assert isinstance(request.user, User)
        try:
            created = services.rekey_request_create(
                key_owner=obj.key_owner, requested_by=request.user, reason=obj.reason
            )
        except APIError as error:
            messages.error(request, str(error.detail))
            return
        obj.pk, obj.requested_by, obj.requested_at = (
            created.pk,
            created.requested_by,
            created.requested_at,
        )
