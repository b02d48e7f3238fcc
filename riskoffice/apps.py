from django.apps import AppConfig


class RiskofficeConfig(AppConfig):
    name = "riskoffice"
    verbose_name = "riskoffice"
