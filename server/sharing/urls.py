from django.urls import re_path

from . import api

PREFIX = r"^ocs/v[12]\.php/apps/files_sharing/api/v1/"

urlpatterns = [
    re_path(PREFIX + r"shares/?$", api.SharesView.as_view()),
    re_path(PREFIX + r"shares/(?P<share_id>[0-9]+)/?$", api.ShareView.as_view()),
]
