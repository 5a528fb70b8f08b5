from django.urls import re_path

from . import api

PREFIX = r"^ocs/v[12]\.php/apps/e2ee_stack/api/v(?P<api>1)/"

urlpatterns = [
    re_path(PREFIX + r"revoked/?$", api.RevokedView.as_view()),
]
