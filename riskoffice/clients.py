"""Partner API clients: creation (the secret is known once), changes, disabling. Each leaves an audit row.

A client is an OAuth application for the client-credentials grant, bound to its partner by an ApiClient
row that holds what it may do: its scopes, whether it is active, its sandbox allowance and rate limit.
Tokens a client holds are revoked when it is disabled or loses a scope, so no token outlives the rights
it was issued under.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import slugify
from oauth2_provider.models import AccessToken, Application

from .audit import Actor, audit_record
from .models import ApiClient, Partner


def scope_choices() -> list[tuple[str, str]]:
    return list(settings.OAUTH2_PROVIDER["SCOPES"].items())


def scopes_clean(scopes: list[str]) -> list[str]:
    """The scopes in settings order, or a ValidationError naming the unknown ones."""
    known = [name for name, _ in scope_choices()]
    unknown = sorted(set(scopes) - set(known))
    if unknown:
        raise ValidationError({"scopes": f"Unknown scope(s): {', '.join(unknown)}. Known: {', '.join(known)}."})
    if not scopes:
        raise ValidationError({"scopes": "Give the client at least one scope."})
    return [name for name in known if name in scopes]


@dataclass(frozen=True)
class NewClient:
    api_client: ApiClient
    client_id: str
    client_secret: str  # shown once: only its hash is stored


@transaction.atomic
def partner_client_create(
    *,
    partner_name: str,
    scopes: list[str],
    actor: Actor,
    sandbox: bool = False,
    sandbox_allowance: int | None = None,
    sandbox_unlimited: bool = False,
    rate_limit_per_minute: int | None = None,
) -> NewClient:
    """A client for the partner ``partner_name``, created with the partner when new (live unless ``sandbox``)."""
    partner_name = (partner_name or "").strip()
    if not partner_name:
        raise ValidationError({"name": "Name the partner."})
    scopes = scopes_clean(scopes)
    partner, created = Partner.objects.get_or_create(name=partner_name, defaults={"is_sandbox": sandbox})
    if not created and partner.is_sandbox != sandbox:
        mode = "a sandbox" if partner.is_sandbox else "a live"
        raise ValidationError({"sandbox": f"{partner.name} is {mode} partner; its clients are too."})
    secret = secrets.token_urlsafe(32)
    application = Application.objects.create(
        name=f"{partner.name} API client",
        client_id=f"{slugify(partner.name)[:40] or 'partner'}-{secrets.token_hex(6)}",
        client_secret=secret,  # hashed on save by django-oauth-toolkit
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
    )
    api_client = ApiClient.objects.create(
        application=application,
        partner=partner,
        allowed_scopes=scopes,
        sandbox_allowance=sandbox_allowance if partner.is_sandbox else None,
        sandbox_unlimited=sandbox_unlimited and partner.is_sandbox,
        rate_limit_per_minute=rate_limit_per_minute,
    )
    audit_record(
        actor=actor,
        action="api_client.created",
        obj=api_client,
        after={
            "partner": partner.name,
            "partner_created": created,
            "client_id": application.client_id,
            "sandbox": partner.is_sandbox,
            **_terms(api_client),
        },
    )
    return NewClient(api_client=api_client, client_id=application.client_id, client_secret=secret)


def _terms(api_client: ApiClient) -> dict:
    return {
        "scopes": list(api_client.allowed_scopes),
        "is_active": api_client.is_active,
        "sandbox_allowance": api_client.sandbox_allowance,
        "sandbox_unlimited": api_client.sandbox_unlimited,
        "rate_limit_per_minute": api_client.rate_limit_per_minute,
    }


@transaction.atomic
def api_client_update(
    *,
    api_client: ApiClient,
    scopes: list[str],
    is_active: bool,
    sandbox_allowance: int | None,
    rate_limit_per_minute: int | None,
    actor: Actor,
    sandbox_unlimited: bool = False,
) -> int:
    """Change what a client may do; returns how many of its tokens were revoked (disabled, or a scope taken away)."""
    api_client = ApiClient.objects.select_for_update().get(pk=api_client.pk)
    before = _terms(api_client)
    api_client.allowed_scopes = scopes_clean(scopes)
    api_client.is_active = is_active
    api_client.sandbox_allowance = sandbox_allowance
    api_client.sandbox_unlimited = sandbox_unlimited and api_client.partner.is_sandbox
    api_client.rate_limit_per_minute = rate_limit_per_minute
    api_client.save(
        update_fields=["allowed_scopes", "is_active", "sandbox_allowance", "sandbox_unlimited", "rate_limit_per_minute"]
    )
    lost_a_scope = bool(set(before["scopes"]) - set(api_client.allowed_scopes))
    revoked = tokens_revoke(api_client) if (not is_active or lost_a_scope) else 0
    after = _terms(api_client)
    if after != before:
        audit_record(
            actor=actor,
            action="api_client.changed",
            obj=api_client,
            before=before,
            after={**after, "tokens_revoked": revoked},
        )
    return revoked


def tokens_revoke(api_client: ApiClient) -> int:
    """Revoke every access token the client holds (django-oauth-toolkit revokes a token by deleting its row)."""
    tokens = AccessToken.objects.filter(application_id=api_client.application_id)
    revoked = tokens.count()
    tokens.delete()
    return revoked
