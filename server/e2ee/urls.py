from django.urls import re_path

from . import api

# /ocs/v1.php and /ocs/v2.php, API v1 and v2. Keys and flags behave the same in all four;
# locks and metadata take the API version (`api`) into account.
PREFIX = r"^ocs/v[12]\.php/apps/end_to_end_encryption/api/v(?P<api>[12])/"
FILE_ID = r"(?P<file_id>[0-9]+)"

urlpatterns = [
    re_path(PREFIX + r"public-key/?$", api.PublicKeyView.as_view()),
    re_path(PREFIX + r"private-key/?$", api.PrivateKeyView.as_view()),
    re_path(PREFIX + r"server-key/?$", api.ServerKeyView.as_view()),
    re_path(PREFIX + r"encrypted/" + FILE_ID + "/?$", api.EncryptedFlagView.as_view()),
    re_path(PREFIX + r"encrypted-files/?$", api.EncryptedFilesResetView.as_view()),
    re_path(PREFIX + r"lock/" + FILE_ID + "/?$", api.LockView.as_view()),
    re_path(PREFIX + r"meta-data/" + FILE_ID + "/?$", api.MetadataView.as_view()),
    re_path(
        PREFIX.replace("[12])", "2)") + r"meta-data/" + FILE_ID + "/filedrop/?$",
        api.FiledropView.as_view(),
    ),
]
