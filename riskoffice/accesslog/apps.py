import hashlib

from django.apps import AppConfig
from django.db.backends.signals import connection_created


def _sha256_hex(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


def _register_sqlite_sha256(sender, connection, **kwargs) -> None:
    """SQLite has no SHA-256: the access log's INSERT hashes with this one (riskoffice.accesslog.services)."""
    if connection.vendor == "sqlite":
        connection.connection.create_function("riskoffice_sha256", 1, _sha256_hex, deterministic=True)


class AccessLogConfig(AppConfig):
    """Who read or changed what: an append-only, hash-chained access log."""

    name = "riskoffice.accesslog"
    label = "accesslog"
    verbose_name = "Access log"

    def ready(self) -> None:
        from . import receivers  # noqa: F401 - sign-ins and failed sign-ins

        connection_created.connect(_register_sqlite_sha256, dispatch_uid="accesslog_sqlite_sha256")
