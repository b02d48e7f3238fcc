from django.apps import AppConfig


class RiskofficeConfig(AppConfig):
    name = "riskoffice"
    verbose_name = "riskoffice"

    def ready(self) -> None:
        from .crypto import install_field_signers

        install_field_signers()
        from . import openapi  # noqa: F401 - registers the API's schema extensions with drf-spectacular
