from django.apps import AppConfig


class RecoveryConfig(AppConfig):
    name = "server.recovery"
    label = "recovery"
    verbose_name = "Offline recovery key"

    def ready(self) -> None:
        from server.accounts.capabilities import register

        from .capabilities import recovery_capabilities

        register(recovery_capabilities)
