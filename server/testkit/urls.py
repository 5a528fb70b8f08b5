from django.urls import re_path

from . import api

# Our own namespace (like …/e2ee_stack/api/v1/revoked); the views answer 404 outside ephemeral
# mode, so the routes may always exist.
PREFIX = r"^ocs/v[12]\.php/apps/e2ee_stack/api/v1/testkit/"

urlpatterns = [
    re_path(PREFIX + r"faults/?$", api.FaultsView.as_view()),
    re_path(PREFIX + r"expire-lock/?$", api.ExpireLockView.as_view()),
    re_path(PREFIX + r"users/?$", api.UsersView.as_view()),
]
