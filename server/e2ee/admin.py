"""Admin for E2EE state. Nothing here can show key material: the server holds none that opens
user data, and wrapped private keys and metadata documents are not displayed either."""

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from server.audit.services import audit_record, client_address
from server.core.admin_base import ReadOnlyAdmin

from .locks import lock_force_release
from .models import EncryptedFolder, FolderMetadata, Lock, WrappedPrivateKey


class ReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=500,
        help_text="Why the lock is released (kept in the audit log)",
    )


@admin.action(description="Force-release (revert what was staged)")
def force_release(modeladmin, request, queryset):
    form = ReasonForm(request.POST if request.POST.get("confirm") else None)
    if not form.is_valid():
        return TemplateResponse(
            request,
            "admin/e2ee/force_release.html",
            {
                **modeladmin.admin_site.each_context(request),
                "title": "Force-release locks",
                "locks": list(queryset),
                "form": form,
            },
        )
    locks = list(queryset.select_related("user"))
    for lock in locks:
        folder = lock_force_release(lock_id=lock.pk)
        audit_record(
            actor=request.user.get_username(),
            action="lock.force_release",
            target=f"folder:{folder}",
            outcome="success",
            source_address=client_address(request.META),
            details={"reason": form.cleaned_data["reason"], "holder": lock.user.get_username()},
        )
    modeladmin.message_user(request, f"Released {len(locks)} lock(s).", messages.SUCCESS)
    return None


@admin.register(Lock)
class LockAdmin(ReadOnlyAdmin):
    list_display = ("node_id", "user", "created_at", "touched_at", "counter")
    list_filter = ("created_at",)
    search_fields = ("user__username", "node__id")
    fields = ("node_id", "user", "created_at", "touched_at", "counter")  # never the token
    readonly_fields = fields
    actions = [force_release]

    def get_actions(self, request):
        # The read-only base has no delete permission, which would hide every action.
        return {"force_release": (force_release, "force_release", force_release.short_description)}


@admin.register(EncryptedFolder)
class EncryptedFolderAdmin(ReadOnlyAdmin):
    list_display = ("id", "owner", "is_topmost", "locked_by", "metadata_counter", "mtime")
    search_fields = ("owner__username", "id")
    fields = ("id", "owner", "parent", "mtime", "etag")
    readonly_fields = fields

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .filter(is_encrypted=True)
            .select_related("owner", "parent", "e2ee_lock__user", "e2ee_metadata")
        )

    @admin.display(boolean=True, description="topmost")
    def is_topmost(self, obj):
        return obj.parent is None or not obj.parent.is_encrypted

    @admin.display(description="locked by")
    def locked_by(self, obj):
        lock = getattr(obj, "e2ee_lock", None)
        return lock.user.get_username() if lock else "—"

    @admin.display(description="counter")
    def metadata_counter(self, obj):
        record = getattr(obj, "e2ee_metadata", None)
        return record.counter if record else "no metadata"


@admin.register(FolderMetadata)
class FolderMetadataAdmin(ReadOnlyAdmin):
    list_display = ("node_id", "counter", "updated_at", "size", "signed")
    fields = ("node_id", "counter", "updated_at", "size", "signed")  # never the document itself
    readonly_fields = fields

    @admin.display(description="bytes")
    def size(self, obj):
        return len(obj.document)

    @admin.display(boolean=True)
    def signed(self, obj):
        return bool(obj.signature)


@admin.register(WrappedPrivateKey)
class WrappedPrivateKeyAdmin(ReadOnlyAdmin):
    list_display = ("key_owner", "user", "created_at")
    search_fields = ("key_owner",)
    fields = ("key_owner", "user", "created_at")  # the wrapped key is never displayed
    readonly_fields = fields
