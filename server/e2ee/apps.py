from django.apps import AppConfig


class E2EEConfig(AppConfig):
    name = "server.e2ee"
    label = "e2ee"
    verbose_name = "End-to-end encryption"

    def ready(self) -> None:
        from server.accounts.capabilities import register

        from .capabilities import e2ee_capabilities

        register(e2ee_capabilities)
