from django.contrib import admin

from .models import Node


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    """Read-only: the tree changes only through the services (blobs and propagation)."""

    list_display = ("id", "owner", "name", "kind", "size", "is_encrypted", "mtime", "etag")
    list_filter = ("kind", "is_encrypted")
    search_fields = ("name", "owner__username")
    raw_id_fields = ("owner", "parent")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
