"""Standard Webhooks 1.0 signatures: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time

SECRET_PREFIX = "whsec_"


def secret_generate() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(*, secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    to_sign = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), to_sign, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(*, secrets_: list[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Headers for one attempt; several secrets sign side by side during a rotation."""
    signatures = " ".join(sign(secret=s, message_id=message_id, timestamp=timestamp, body=body) for s in secrets_)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signatures,
        "content-type": "application/json",
        "user-agent": "riskoffice-webhooks/1",
    }


def verify(
    *, secrets_: list[str], headers: dict[str, str], body: bytes, tolerance_seconds: int = 300, now: float | None = None
) -> bool:
    """True when one of the ``v1,`` signatures matches one of ``secrets_`` and the timestamp is recent.

    What a receiver does (docs/webhooks.md); the tests check our signatures with the independent
    ``standardwebhooks`` library instead.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    message_id, timestamp = lowered.get("webhook-id", ""), lowered.get("webhook-timestamp", "")
    if not message_id or not timestamp.isdigit():
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance_seconds:
        return False
    given = {part for part in lowered.get("webhook-signature", "").split(" ") if part.startswith("v1,")}
    for secret in secrets_:
        try:
            expected = sign(secret=secret, message_id=message_id, timestamp=int(timestamp), body=body)
        except (binascii.Error, ValueError):
            continue
        if any(hmac.compare_digest(expected, signature) for signature in given):
            return True
    return False
