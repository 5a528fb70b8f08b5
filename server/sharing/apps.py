from django.apps import AppConfig


class SharingConfig(AppConfig):
    name = "server.sharing"
    label = "sharing"
    verbose_name = "Sharing"
