from django.urls import re_path

from . import api

# /ocs/v1.php and /ocs/v2.php, API v1 and v2: key and flag endpoints are the same in all four.
PREFIX = r"^ocs/v[12]\.php/apps/end_to_end_encryption/api/v[12]/"

urlpatterns = [
    re_path(PREFIX + r"public-key/?$", api.PublicKeyView.as_view()),
    re_path(PREFIX + r"private-key/?$", api.PrivateKeyView.as_view()),
    re_path(PREFIX + r"server-key/?$", api.ServerKeyView.as_view()),
]
