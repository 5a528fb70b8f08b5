"""Events that do not pass through an API view: Django admin changes and admin logins."""

from __future__ import annotations

from typing import Any

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models.signals import post_save
from django.dispatch import receiver

from .services import audit_record, client_address, record_failed_login

_ADMIN_ACTIONS = {ADDITION: "admin.add", CHANGE: "admin.change", DELETION: "admin.delete"}


@receiver(post_save, sender=LogEntry)
def _admin_change(sender: type, instance: LogEntry, created: bool, **kwargs: Any) -> None:
    if not created:
        return
    # Never object_repr: it may carry a folder name. The change message lists field names only.
    kind = instance.content_type
    model = f"{kind.app_label}.{kind.model}" if kind is not None else "unknown"
    audit_record(
        actor=instance.user.get_username(),
        action=_ADMIN_ACTIONS.get(instance.action_flag, "admin.other"),
        target=f"{model}:{instance.object_id}",
        outcome="success",
        details={"changed": instance.get_change_message()[:500]},
    )


@receiver(user_logged_in)
def _login(sender: type, request: Any, user: Any, **kwargs: Any) -> None:
    audit_record(
        actor=user.get_username(),
        action="auth.login",
        target=f"user:{user.get_username()}",
        outcome="success",
        source_address=client_address(getattr(request, "META", {})),
    )


@receiver(user_login_failed)
def _login_failed(
    sender: type, credentials: dict[str, Any], request: Any = None, **kwargs: Any
) -> None:
    record_failed_login(
        username=str(credentials.get("username", "")),
        source_address=client_address(getattr(request, "META", None) or {}),
        channel="admin",
    )
