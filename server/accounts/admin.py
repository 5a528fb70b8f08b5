from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin

from .models import AppPassword, User
from .services import app_password_create


class AppPasswordInline(admin.TabularInline):
    model = AppPassword
    extra = 0
    fields = ("name", "hint", "created_at", "last_used_at")
    readonly_fields = ("name", "hint", "created_at", "last_used_at")
    can_delete = True

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False  # created through the action, which shows the value once


@admin.action(description="Create an app password (shown once)")
def create_app_password(modeladmin, request, queryset):  # type: ignore[no-untyped-def]
    for user in queryset:
        record, clear = app_password_create(user=user, name="created in admin")
        modeladmin.message_user(
            request,
            f"App password for {user.username}: {clear} — copy it now, it is not shown again.",
            level=messages.WARNING,
        )


@admin.register(User)
class AccountAdmin(UserAdmin):
    inlines = [AppPasswordInline]
    actions = [create_app_password]


@admin.register(AppPassword)
class AppPasswordAdmin(admin.ModelAdmin):
    list_display = ("user", "name", "hint", "created_at", "last_used_at")
    list_filter = ("created_at",)
    search_fields = ("user__username", "name")
    readonly_fields = ("user", "hint", "created_at", "last_used_at")
    fields = ("user", "name", "hint", "created_at", "last_used_at")

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False
