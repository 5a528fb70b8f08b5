from django.urls import re_path

from . import api

PREFIX = r"^ocs/v[12]\.php/apps/e2ee-stack/api/v1/recovery/"

urlpatterns = [
    re_path(PREFIX + r"export/?$", api.ExportView.as_view()),
    re_path(PREFIX + r"blob/(?P<file_id>[0-9]+)/?$", api.BlobView.as_view()),
]
