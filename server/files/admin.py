from django.contrib import admin

from server.core.admin_base import ReadOnlyAdmin

from .models import Node


@admin.register(Node)
class NodeAdmin(ReadOnlyAdmin):
    """Read-only: the tree changes only through the services (blobs and propagation)."""

    list_display = ("id", "owner", "name", "kind", "size", "is_encrypted", "mtime", "etag")
    list_filter = ("kind", "is_encrypted")
    search_fields = ("name", "owner__username")
    raw_id_fields = ("owner", "parent")
