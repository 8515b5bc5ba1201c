from django.apps import AppConfig


class ValidatorsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "validators"
