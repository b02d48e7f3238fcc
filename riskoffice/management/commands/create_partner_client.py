"""manage.py create_partner_client --name N --scopes S [S ...] [--sandbox] [--json]"""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from riskoffice.audit import Actor
from riskoffice.clients import partner_client_create, scope_choices


class Command(BaseCommand):
    help = (
        "Create an API client for a partner (and the partner, when new) and print its client id and secret. "
        "The secret is shown this once: only its hash is stored."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="The partner's name (created when new).")
        parser.add_argument(
            "--scopes",
            nargs="+",
            required=True,
            metavar="SCOPE",
            help="Scopes the client may request: " + ", ".join(name for name, _ in scope_choices()) + ".",
        )
        parser.add_argument(
            "--sandbox",
            action="store_true",
            help="A sandbox partner: scored from the sandbox sources only, within an allowance. Default: live.",
        )
        parser.add_argument(
            "--allowance",
            help="Sandbox only: scores allowed over the allowance window, or 'unlimited' (a load-test client).",
        )
        parser.add_argument("--rate-limit", type=int, help="Requests per minute (default: API_RATE_LIMIT_PER_MINUTE).")
        parser.add_argument("--json", action="store_true", help='Print one line: {"client_id": …, "client_secret": …}')

    def handle(self, *args, **options):
        unlimited = options["allowance"] == "unlimited"
        if options["allowance"] is not None and not unlimited:
            if not options["allowance"].isdigit():
                raise CommandError("--allowance is a whole number of scores, or 'unlimited'.")
            options["allowance"] = int(options["allowance"])
        if options["rate_limit"] is not None and options["rate_limit"] < 0:
            raise CommandError("--rate-limit cannot be negative.")
        if options["allowance"] is not None and not options["sandbox"]:
            raise CommandError("--allowance applies to sandbox clients only (add --sandbox).")
        try:
            new = partner_client_create(
                partner_name=options["name"],
                scopes=options["scopes"],
                sandbox=options["sandbox"],
                sandbox_allowance=None if unlimited else options["allowance"],
                sandbox_unlimited=unlimited,
                rate_limit_per_minute=options["rate_limit"],
                actor=Actor.of_system("create_partner_client"),
            )
        except ValidationError as exc:
            raise CommandError(" ".join(" ".join(messages) for messages in exc.message_dict.values())) from None
        if options["json"]:
            self.stdout.write(json.dumps({"client_id": new.client_id, "client_secret": new.client_secret}))
            return
        partner = new.api_client.partner
        self.stdout.write(f"Partner        {partner.name} ({'sandbox' if partner.is_sandbox else 'live'})")
        self.stdout.write(f"Scopes         {' '.join(new.api_client.allowed_scopes)}")
        self.stdout.write(f"client_id      {new.client_id}")
        self.stdout.write(f"client_secret  {new.client_secret}")
        self.stdout.write("Keep the secret now: it is stored hashed and cannot be shown again.")
