from django.contrib import admin
from django.http import HttpResponse

from server.core.admin_base import ReadOnlyAdmin

from .management.commands.audit import event_json
from .models import AuditCheckpoint, AuditEvent


@admin.action(description="Export selected events as JSON lines")
def export_json_lines(modeladmin, request, queryset):
    body = "".join(event_json(event) + "\n" for event in queryset.order_by("seq"))
    response = HttpResponse(body, content_type="application/x-ndjson")
    response["Content-Disposition"] = 'attachment; filename="audit.jsonl"'
    return response


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Read-only: the log is append-only (and on PostgreSQL the database enforces it)."""

    list_display = ("seq", "created_at", "actor", "action", "target", "outcome", "source_address")
    list_filter = ("outcome", "action", "created_at")
    search_fields = ("actor", "action", "target")
    date_hierarchy = "created_at"
    actions = [export_json_lines]
    readonly_fields = [f.name for f in AuditEvent._meta.fields]


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAdmin):
    list_display = ("seq", "created_at", "head_hash", "key_fingerprint")
    readonly_fields = [f.name for f in AuditCheckpoint._meta.fields]
