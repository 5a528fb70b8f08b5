from django.apps import AppConfig


class SharingConfig(AppConfig):
    name = "server.sharing"
    label = "sharing"
    verbose_name = "Sharing"

    def ready(self) -> None:
        from server.files.signals import tree_changed

        from .services import sharee_roots_touch

        tree_changed.connect(sharee_roots_touch, dispatch_uid="sharing.sharee_roots_touch")
