"""The code a demo user's authenticator app would show now (development only)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from riskoffice.management.devonly import refuse_in_production


class Command(BaseCommand):
    help = "Print the current two-factor code of a user's authenticator app (dev and demo only)."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username: str, **options) -> None:
        refuse_in_production("totp_code")
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        device = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("-pk").first()
        if device is None:
            raise CommandError(f"{username} has no authenticator app yet: they enrol one at /two-factor/.")
        totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
        self.stdout.write(f"{totp.token():0{device.digits}d}")
