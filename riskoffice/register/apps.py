from django.apps import AppConfig


class RegisterConfig(AppConfig):
    """The GDPR Article 30 record of processing activities, and the retention it sets."""

    name = "riskoffice.register"
    label = "register"
    verbose_name = "GDPR register"
