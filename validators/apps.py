from django.apps import AppConfig


class ValidatorsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "validators"

    def ready(self) -> None:
        from django.conf import settings

        from validators.sandbox import pool

        # The process-wide sandbox pool takes the admin's choice on weaker isolation.
        pool.configure(allow_weak_isolation=settings.CONCORD_SANDBOX_ALLOW_WEAK_ISOLATION)
