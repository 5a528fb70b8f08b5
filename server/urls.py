from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from server.accounts.api import CapabilitiesView, CurrentUserView, status_php

# /ocs/v1.php and /ocs/v2.php serve the same views; the envelope differs (server.ocs).
OCS = r"^ocs/v[12]\.php/"

urlpatterns = [
    path("status.php", status_php),
    re_path(OCS + r"cloud/capabilities/?$", CapabilitiesView.as_view()),
    re_path(OCS + r"cloud/user/?$", CurrentUserView.as_view()),
    path("", include("server.e2ee.urls")),
    path("", include("server.certificates.urls")),
    path("", include("server.sharing.urls")),
    path("", include("server.recovery.urls")),
    path("", include("server.testkit.urls")),
    path("admin/", admin.site.urls),
    # API description for client developers (assets bundled: works without internet access).
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
]
