from django.apps import AppConfig


class AccessLogConfig(AppConfig):
    """Who read or changed what: an append-only, hash-chained access log."""

    name = "riskoffice.accesslog"
    label = "accesslog"
    verbose_name = "Access log"
