"""Two-factor sign-in with TOTP (django-otp): enrolling a device, and the code asked after the password.

Required for admins (superusers included) and senior analysts, offered to everyone else
(riskoffice.signin.TWO_FACTOR_REQUIRED_ROLES). riskoffice.signin.TwoFactorMiddleware sends a session that
has not passed its second factor here; these views verify the code and mark the session verified
(``django_otp.login``).

Wrong codes are throttled twice: django-otp makes the device wait 1, 2, 4, 8... seconds after each failure
(OTP_TOTP_THROTTLE_FACTOR, stored on the device, so shared by every process and session), and
TWO_FACTOR_FAILURE_LIMIT wrong codes in one session sign it out, back to the password (django-axes).
"""

from __future__ import annotations

from base64 import b32encode

import qrcode
import qrcode.image.svg
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.timezone import localtime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from .audit import Actor, audit_record
from .signin import HAS_DEVICE, two_factor_required

FAILURES = "riskoffice_two_factor_failures"


class CodeForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Code"),
        max_length=12,
        help_text=gettext_lazy("The 6-digit code your authenticator app shows now."),
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True, "spellcheck": "false"}
        ),
    )

    def clean_code(self) -> str:
        code = "".join(self.cleaned_data["code"].split())
        if not (code.isdigit() and len(code) == 6):
            raise forms.ValidationError(_("Enter the 6 digits your authenticator app shows."))
        return code


# --- services -------------------------------------------------------------------------------------------------


def confirmed_device(user: AbstractBaseUser) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("-pk").first()


@transaction.atomic
def device_enrol_start(*, user: AbstractBaseUser) -> TOTPDevice:
    """The device being enrolled (unconfirmed, a fresh secret), made if there is none."""
    pending = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    return pending or TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)


@transaction.atomic
def device_confirm(*, device: TOTPDevice, actor: Actor) -> TOTPDevice:
    """The code matched: the device becomes the user's one confirmed device (an older one is removed)."""
    replaced = list(TOTPDevice.objects.filter(user=device.user).exclude(pk=device.pk).values_list("pk", flat=True))
    TOTPDevice.objects.filter(pk__in=replaced).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    audit_record(
        actor=actor,
        action="two_factor.enrolled",
        obj=device,
        before={"devices": replaced} if replaced else None,
        after={"user": device.user.get_username(), "device": device.pk},
    )
    return device


def secret_of(device: TOTPDevice) -> str:
    """The device's secret as authenticator apps take it by hand (base32, in groups of four)."""
    raw = b32encode(device.bin_key).decode()
    return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def qr_svg(uri: str) -> str:
    """The otpauth URI as an inline SVG QR code (no script, no image request)."""
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    return image.to_string(encoding="unicode")


# --- views -----------------------------------------------------------------------------------------------------


def _next_url(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse(settings.LOGIN_REDIRECT_URL)


def _wrong_code(request: HttpRequest, form: CodeForm, device: TOTPDevice) -> HttpResponse | None:
    """Count a wrong code; past the limit the session is signed out. None while the user may try again."""
    failures = request.session.get(FAILURES, 0) + 1
    request.session[FAILURES] = failures
    if failures >= settings.TWO_FACTOR_FAILURE_LIMIT:
        user = request.user
        audit_record(
            actor=Actor(user=user), action="two_factor.signed_out", obj=device, after={"wrong_codes": failures}
        )
        logout(request)
        messages.error(request, _("Too many wrong codes: you have been signed out. Log in again."))
        return redirect("login")
    allowed, why = device.verify_is_allowed()
    if not allowed and why and why.get("locked_until"):
        form.add_error(
            "code",
            _("Wrong code. Too many wrong codes: wait until %(time)s before the next try.")
            % {"time": date_format(localtime(why["locked_until"]), "H:i:s")},
        )
    else:
        form.add_error("code", _("Wrong code. Enter the code your authenticator app shows now."))
    return None


def _check(request: HttpRequest, form: CodeForm, device: TOTPDevice) -> tuple[bool, HttpResponse | None]:
    """Verify the form's code on the device: (True, None) when it matched; else the redirect of a sign-out, or
    None with the error on the form."""
    allowed, why = device.verify_is_allowed()
    if not allowed:
        until = why.get("locked_until") if why else None
        message = _("Too many wrong codes: wait until %(time)s before the next try.") % {
            "time": date_format(localtime(until), "H:i:s") if until else "—"
        }
        form.add_error("code", message)
        return False, None
    if device.verify_token(form.cleaned_data["code"]):
        return True, None
    return False, _wrong_code(request, form, device)


def _signed_in(request: HttpRequest, device: TOTPDevice) -> HttpResponse:
    """The session passed its second factor: a new session key, the device remembered, on to where it was going."""
    request.session.pop(FAILURES, None)
    request.session.cycle_key()
    request.session[HAS_DEVICE] = True
    otp_login(request, device)
    return redirect(_next_url(request))


@never_cache
@sensitive_post_parameters("code")
@login_required
def two_factor(request: HttpRequest) -> HttpResponse:
    """The "Two-factor sign-in" page: whether it is on, and enrolling (or replacing) an authenticator app."""
    user = request.user
    current = confirmed_device(user)
    verified = user.is_verified()
    if current is not None and not verified:
        # A device exists: this session proves it first (enrolling another would bypass it).
        return redirect(f"{reverse('two-factor-verify')}?{request.GET.urlencode()}")
    enrolling = current is None or request.method == "POST" or "replace" in request.GET
    device = device_enrol_start(user=user) if enrolling else None
    form = CodeForm(request.POST if request.method == "POST" else None)
    if device is not None and request.method == "POST" and form.is_valid():
        verified_now, signed_out = _check(request, form, device)
        if signed_out is not None:
            return signed_out
        if verified_now:
            device_confirm(device=device, actor=Actor(user=user))
            messages.success(request, _("Two-factor sign-in is on: each sign-in will ask for a code."))
            return _signed_in(request, device)
    context = {
        "form": form,
        "device": device,
        "current": current,
        "required": two_factor_required(user),
        "next": _next_url(request),
        "verified": verified,
    }
    if device is not None:
        uri = device.config_url
        context.update(secret=secret_of(device), otpauth_uri=uri, qr_svg=qr_svg(uri))
    return render(request, "registration/two_factor.html", context)


@never_cache
@sensitive_post_parameters("code")
@login_required
def two_factor_verify(request: HttpRequest) -> HttpResponse:
    """The code asked after the password, from a user who has an authenticator app."""
    device = confirmed_device(request.user)
    if device is None:
        return redirect(f"{reverse('two-factor')}?{request.GET.urlencode()}")
    if request.user.is_verified():
        return redirect(_next_url(request))
    form = CodeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        verified_now, signed_out = _check(request, form, device)
        if signed_out is not None:
            return signed_out
        if verified_now:
            return _signed_in(request, device)
    return render(request, "registration/two_factor_verify.html", {"form": form, "next": _next_url(request)})
