from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        # An operation's final state completes the record of the request that started it.
        from audit import services  # noqa: F401 -- connects the operation_finished receiver
