from django.apps import AppConfig


class CertificatesConfig(AppConfig):
    name = "server.certificates"
    label = "certificates"
    verbose_name = "Certificates"
