from django.contrib import admin

from .models import Share


@admin.register(Share)
class ShareAdmin(admin.ModelAdmin):
    """Read-only: shares change through the OCS API (their keys and mounts go with them)."""

    list_display = (
        "id",
        "share_type",
        "owner",
        "node",
        "share_with",
        "permissions",
        "target_name",
        "created_at",
    )
    list_filter = ("share_type",)
    search_fields = ("owner__username", "share_with__username", "target_name")
    raw_id_fields = ("owner", "node", "share_with")
    readonly_fields = ("token",)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False
