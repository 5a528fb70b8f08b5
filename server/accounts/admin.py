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

    def has_add_permission(self, request, obj=None):
        return False  # created through the action, which shows the value once


@admin.action(description="Create an app password (shown once)")
def create_app_password(modeladmin, request, queryset):
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

    def get_fields(self, request, obj=None):
        return (
            ("user", "name")
            if obj is None
            else ("user", "name", "hint", "created_at", "last_used_at")
        )

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else ("user", "hint", "created_at", "last_used_at")

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        record, clear = app_password_create(user=obj.user, name=obj.name)
        obj.pk, obj.digest, obj.hint = record.pk, record.digest, record.hint
        self.message_user(
            request,
            f"App password for {obj.user.username}: {clear} — copy it now, it is not shown again.",
            level=messages.WARNING,
        )
