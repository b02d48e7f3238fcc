"""Demo accounts (one per role), a sandbox partner with an OAuth client, and a few scored dossiers."""

from __future__ import annotations

import json
import secrets
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice
from oauth2_provider.models import Application

from dossiers.models import Dossier
from dossiers.services import dossier_create, dossier_score
from riskoffice.audit import Actor
from riskoffice.management.devonly import refuse_in_production
from riskoffice.models import ApiClient, Partner
from riskoffice.roles import ADMIN, ANALYST, AUDITOR, SENIOR_ANALYST
from riskoffice.signin import TWO_FACTOR_REQUIRED_ROLES
from riskoffice.twofactor import secret_of
from scoring.model.synthetic import sandbox_company, siren_from_number

# Two senior analysts: an override one of them asks for is approved by the other (four eyes).
DEMO_USERS = {
    "analyst": ANALYST,
    "senior": SENIOR_ANALYST,
    "senior2": SENIOR_ANALYST,
    "admin": ADMIN,
    "auditor": AUDITOR,
}
DEMO_PASSWORD = "riskoffice-demo"  # noqa: S105 - printed for the demo; dev environment only
DEMO_CLIENT_ID = "demo-marketplace"
SAMPLE_SIRENS = ["552100554", "732829320"] + [
    siren_from_number(n) for n in (31415926, 27182818, 16180339, 14142135, 17320508, 22360679)
]


SAMPLE_REQUEST = json.dumps(
    {"company": {"siren": "552100554", "vat": "FR96552100554"}, "bank_data": ["tok"], "requested_amount": 25000}
)


class Command(BaseCommand):
    help = "Create demo users, a sandbox partner with an OAuth client (new secret printed), and sample dossiers."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--no-samples", action="store_true")

    @transaction.atomic
    def _authenticators(self) -> dict[str, TOTPDevice]:
        """The demo's senior analysts and admin must sign in with a code: each gets an authenticator app (kept
        across runs, so an app set up once keeps working)."""
        devices = {}
        for username, role in DEMO_USERS.items():
            if role in TWO_FACTOR_REQUIRED_ROLES:
                user = User.objects.get(username=username)
                device = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("-pk").first()
                devices[username] = device or TOTPDevice.objects.create(user=user, name="demo", confirmed=True)
        return devices

    @transaction.atomic
    def _accounts(self) -> str:
        for username, role in DEMO_USERS.items():
            user, _ = User.objects.get_or_create(username=username)
            user.set_password(DEMO_PASSWORD)
            user.is_staff = role == ADMIN
            user.is_superuser = role == ADMIN
            user.save()
            user.groups.set([Group.objects.get(name=role)])
        partner, _ = Partner.objects.get_or_create(name="Demo Marketplace", defaults={"is_sandbox": True})
        client_secret = secrets.token_urlsafe(32)
        app = Application.objects.filter(client_id=DEMO_CLIENT_ID).first() or Application(client_id=DEMO_CLIENT_ID)
        app.name = "Demo Marketplace (sandbox)"
        app.client_type = Application.CLIENT_CONFIDENTIAL
        app.authorization_grant_type = Application.GRANT_CLIENT_CREDENTIALS
        app.client_secret = client_secret  # hashed on save: only this run knows it
        app.save()
        ApiClient.objects.update_or_create(
            application=app,
            defaults={
                "partner": partner,
                "allowed_scopes": list(settings.OAUTH2_PROVIDER["SCOPES"]),
                "is_active": True,
                # The demo stands for real use under load (docs/benchmarks.md): its sandbox allowance is lifted,
                # where a new sandbox client gets SANDBOX_ALLOWANCE.
                "sandbox_allowance": None,
                "sandbox_unlimited": True,
            },
        )
        return client_secret

    def handle(self, *args, base_url: str, no_samples: bool, **options) -> None:
        refuse_in_production("setup_demo")
        client_secret = self._accounts()
        devices = self._authenticators()
        partner = Partner.objects.get(name="Demo Marketplace")
        client = ApiClient.objects.get(application__client_id=DEMO_CLIENT_ID)
        if not no_samples and not Dossier.objects.filter(partner=partner).exists():
            for i, siren in enumerate(SAMPLE_SIRENS):
                with_bank = bool(i % 3)
                # The amount the sandbox company would plausibly ask for, so the samples look like a real queue.
                amount = sandbox_company(siren, with_bank=with_bank).requested_amount
                dossier = dossier_create(
                    partner=partner,
                    siren=siren,
                    requested_amount=round(Decimal(amount), 2),
                    bank_tokens=["sandbox-token"] if with_bank else [],
                    actor=Actor(client=client),
                )
                dossier_score(dossier_id=dossier.pk)
            # A customer that keeps coming back: its open exposure adds up on the company page.
            for amount in (18000, 42000, 7500):
                dossier = dossier_create(
                    partner=partner,
                    siren=SAMPLE_SIRENS[0],
                    requested_amount=Decimal(amount),
                    bank_tokens=["sandbox-token"],
                    actor=Actor(client=client),
                )
                dossier_score(dossier_id=dossier.pk)
        self.stdout.write(self.style.SUCCESS("\nriskoffice demo is ready."))
        self.stdout.write(f"""
  Back-office   {base_url}/dossiers/
  Users         {", ".join(DEMO_USERS)}   password: {DEMO_PASSWORD}
  Admin         {base_url}/admin/   (user admin)
  Two-factor    {", ".join(devices)} sign in with a code after the password:
                .venv/bin/python manage.py totp_code <user>   prints the current code, or add the secret to an
                authenticator app: {"; ".join(f"{name} {secret_of(device)}" for name, device in devices.items())}
  Health        {base_url}/healthz   {base_url}/readyz

  Partner API (OAuth 2.0 client credentials)
    client_id:     {DEMO_CLIENT_ID}
    client_secret: {client_secret}
    curl -s -u {DEMO_CLIENT_ID}:{client_secret} -d grant_type=client_credentials {base_url}/o/token/
    curl -s -X POST {base_url}/api/v1/scores -H "Authorization: Bearer $TOKEN" \\
         -H "Content-Type: application/json" \\
         -d '{SAMPLE_REQUEST}'
""")
