"""Demo accounts (one per role), a sandbox partner with an OAuth client, a few scored dossiers, and a webhook.

The demo partner's webhook endpoint points at the demo receiver (``manage.py webhook_receiver``, which
scripts/demo.sh runs on port 8010); its secret is written to var/demo-webhook-secret for the receiver.
"""

from __future__ import annotations

import json
import os
import secrets
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from oauth2_provider.models import Application

from alerts.models import WebhookEndpoint
from alerts.services import url_problem, webhook_endpoint_create, webhook_endpoint_delete
from dossiers.models import Company, Dossier
from dossiers.selectors import GRANTED_DECISIONS
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
DEMO_MAIL_DOMAIN = "riskoffice.example"
SAMPLE_SIRENS = ["552100554", "732829320"] + [
    siren_from_number(n) for n in (31415926, 27182818, 16180339, 14142135, 17320508, 22360679)
]


# Where scripts/demo.sh runs the demo receiver (manage.py webhook_receiver), standing in for the partner's ERP.
DEMO_RECEIVER_URL = "http://127.0.0.1:8010/hooks"


def demo_secret_file() -> Path:
    return settings.VAR_DIR / "demo-webhook-secret"


SAMPLE_REQUEST = json.dumps(
    {"company": {"siren": "552100554", "vat": "FR96552100554"}, "bank_data": ["tok"], "requested_amount": 25000}
)


class Command(BaseCommand):
    help = "Create demo users, a sandbox partner with an OAuth client (new secret printed), and sample dossiers."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--no-samples", action="store_true")
        parser.add_argument(
            "--receiver-url", default=DEMO_RECEIVER_URL, help="The demo partner's webhook endpoint (every event type)."
        )

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
            # Alert e-mails go to analysts with an address (printed on the worker's console in the demo).
            user.email = user.email or f"{username}@{DEMO_MAIL_DOMAIN}"
            user.save()
            user.groups.set([Group.objects.get(name=role)])
        partner, _ = Partner.objects.get_or_create(
            name="Demo Marketplace",
            # Told by e-mail when its webhook endpoint is disabled (the demo receiver down for days).
            defaults={"is_sandbox": True, "technical_contact_email": f"tech@{DEMO_MAIL_DOMAIN}"},
        )
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

    @transaction.atomic
    def _webhook(self, partner: Partner, url: str) -> WebhookEndpoint:
        """One endpoint at ``url`` for the demo partner, subscribed to every event type; its secret in var/.

        Run again, it keeps an active endpoint (and writes its secret again) rather than adding a second one;
        one disabled meanwhile (the receiver was down for days) is replaced by a fresh one.
        """
        actor = Actor.of_system("setup_demo")
        endpoint = None
        for existing in WebhookEndpoint.objects.filter(partner=partner, url=url).order_by("pk"):
            if existing.is_active and endpoint is None:
                endpoint = existing
            else:
                webhook_endpoint_delete(endpoint=existing, actor=actor)
        if endpoint is None:
            endpoint, _ = webhook_endpoint_create(partner=partner, url=url, event_types=[], actor=actor)
        path = demo_secret_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        # Owner-only from the start, like the other secrets under var/.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(endpoint.secret + "\n")
        return endpoint

    @staticmethod
    def _exposed_company(partner: Partner) -> tuple[Company, Decimal] | None:
        """The company on which the demo partner holds the most open exposure (granted, no outcome yet)."""
        row = (
            Dossier.objects.filter(
                partner=partner, company__isnull=False, decision__in=GRANTED_DECISIONS, outcome__isnull=True
            )
            .values("company_id")
            .annotate(amount=Sum("requested_amount"))
            .order_by("-amount", "company_id")
            .first()
        )
        if row is None:
            return None
        return Company.objects.get(pk=row["company_id"]), row["amount"]

    def handle(self, *args, base_url: str, no_samples: bool, receiver_url: str, **options) -> None:
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
        # A receiver URL the SSRF rules refuse (WEBHOOK_ALLOW_PRIVATE_URLS off) leaves the demo without its webhook.
        refused = url_problem(receiver_url)
        endpoint = None if refused else self._webhook(partner, receiver_url)
        exposed = self._exposed_company(partner)
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
        self._monitoring_help(base_url, client_secret, endpoint, exposed, refused)

    def _monitoring_help(
        self,
        base_url: str,
        client_secret: str,
        endpoint: WebhookEndpoint | None,
        exposed: tuple[Company, Decimal] | None,
        refused: str | None,
    ) -> None:
        if endpoint is None:
            webhooks = f"no endpoint registered for the demo receiver: {refused}"
        else:
            webhooks = (
                f"every event for the demo partner goes to {endpoint.url} (endpoint {endpoint.pk}), the demo\n"
                "                  receiver scripts/demo.sh runs: it verifies each signature and prints each event to\n"
                f"                  var/log/receiver.log (secret in {demo_secret_file()})"
            )
        self.stdout.write(f"""  Monitoring and alerts
    Webhooks      {webhooks}
    Daily run     .venv/bin/python manage.py monitor --now   re-scores every monitored company""")
        if exposed is None:
            self.stdout.write(
                "    (no demo company has open exposure yet: grant a sample dossier in the back-office first)\n"
            )
            return
        company, amount = exposed
        who = f"{company.name} (SIREN {company.siren})" if company.name else f"SIREN {company.siren}"
        token = (
            f"$(curl -s -u {DEMO_CLIENT_ID}:{client_secret} -d grant_type=client_credentials {base_url}/o/token/ "
            "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')"
        )
        event = json.dumps(
            {
                "event_id": f"demo-insolvency-{secrets.token_hex(4)}",
                "kind": "insolvency_proceeding",
                "occurred_on": timezone.localdate().isoformat(),
                "company": {"siren": company.siren},
            }
        )
        self.stdout.write(f"""
    An insolvency proceeding on {who} (open exposure of the demo partner: {amount} EUR), in one command:
    curl -s -X POST {base_url}/api/v1/events -H "Authorization: Bearer {token}" \\
         -H "Content-Type: application/json" -d '{event}'
    Within seconds: an alert in {base_url}/alerts/ and a verified company.insolvency_proceeding in
    var/log/receiver.log (then the company's re-score, and a score.dropped if it fell far enough).
""")
