"""The back-office's alert inbox (analysts act, auditors and admins read) and the admins' webhook pages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from dossiers import limits
from dossiers import selectors as dossier_selectors
from dossiers.models import Company
from dossiers.views.queue import AmountField
from riskoffice.audit import Actor
from riskoffice.roles import ADMIN, CAN_DECIDE, CAN_READ_DOSSIERS, has_any_role
from riskoffice.scoping import get_or_404
from riskoffice.web import apply_service_errors, require_role, seek_page

from . import inbox, selectors, services
from .models import NegativeEvent, WebhookDelivery, WebhookEndpoint

PAGE_SIZE = 50
PAGE_SIZES = (25, 50, 100)
DELIVERIES_PAGE_SIZE = 25


def _back(request: HttpRequest, default: str) -> str:
    """Where the form was sent from (the inbox with its filters), if it is on this site."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return default


# --- the inbox ----------------------------------------------------------------------------------------------------

SHOW = (("unread", gettext_lazy("Unread")), ("all", gettext_lazy("All")))


class InboxFilterForm(forms.Form):
    """The inbox's query string: a bad value is dropped and named, never a 500."""

    show = forms.ChoiceField(required=False, choices=SHOW, label=gettext_lazy("Show"))
    kind = forms.ChoiceField(
        required=False,
        choices=[("", gettext_lazy("Any")), *inbox.KIND_LABELS.items()],
        label=gettext_lazy("Kind"),
    )
    severity = forms.ChoiceField(
        required=False,
        choices=[("", gettext_lazy("Any")), *inbox.SEVERITY_LABELS.items()],
        label=gettext_lazy("Severity"),
    )
    company = forms.RegexField(
        required=False,
        regex=r"^\s*\d{9}\s*$",
        label=gettext_lazy("SIREN"),
        max_length=20,
        error_messages={"invalid": gettext_lazy("A SIREN is 9 digits.")},
    )
    size = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        choices=[(size, size) for size in PAGE_SIZES],
        label=gettext_lazy("Per page"),
    )

    def notes(self) -> list[str]:
        return [
            _("%(field)s ignored: %(error)s") % {"field": self.fields[name].label, "error": " ".join(errors)}
            for name, errors in self.errors.items()
        ]


@login_required
@require_safe
def inbox_page(request: HttpRequest) -> HttpResponse:
    require_role(request, CAN_READ_DOSSIERS)
    query = request.GET.copy()
    query.setdefault("size", str(PAGE_SIZE))  # the select shows the size in use
    form = InboxFilterForm(query)
    form.is_valid()  # the valid fields filter; each invalid one is named in a note
    data = form.cleaned_data
    siren = (data.get("company") or "").strip()
    companies = dossier_selectors.companies_for_user(request.user)
    company = companies.filter(siren=siren).only("pk", "siren", "name").first() if siren else None
    filters = inbox.InboxFilters(
        show=data.get("show") or ("all" if company else "unread"),
        kind=data.get("kind") or "",
        severity=data.get("severity") or "",
        company_id=company.pk if company else (-1 if siren else None),
    )
    page = seek_page(inbox.inbox_alerts(request.user, filters), request.GET.get("page"), data.get("size") or PAGE_SIZE)
    rows = [(alert, inbox.alert_what(alert)) for alert in page.object_list]
    return render(
        request,
        "alerts/inbox.html",
        {
            "page": page,
            "rows": rows,
            "form": form,
            "filters": filters,
            "company": company,
            "siren": siren,
            "notes": form.notes(),
            "can_act": has_any_role(request.user, CAN_DECIDE),
            "any_unread": any(alert.acknowledged_at is None for alert, _what in rows),
            "bulk_max": inbox.BULK_MAX,
        },
    )


@login_required
@require_POST
def alert_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    require_role(request, CAN_DECIDE)
    alert = get_or_404(selectors.alerts_for_user(request.user), pk)
    try:
        inbox.alert_acknowledge(alert=alert, user=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("Alert acknowledged."))
    return redirect(_back(request, reverse("alerts:inbox")))


@login_required
@require_POST
def alerts_acknowledge(request: HttpRequest) -> HttpResponse:
    require_role(request, CAN_DECIDE)
    raw = request.POST.getlist("alert")
    ids = [int(value) for value in raw if value.isdigit() and len(value) < 12]
    if not ids:
        messages.error(request, _("Select the alerts to acknowledge."))
        return redirect(_back(request, reverse("alerts:inbox")))
    try:
        done = inbox.alerts_acknowledge(alert_ids=ids, user=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        if done == len(set(ids)):
            message = ngettext("%(count)d alert acknowledged.", "%(count)d alerts acknowledged.", done)
            messages.success(request, message % {"count": done})
        else:
            messages.warning(
                request,
                ngettext(
                    "%(count)d alert acknowledged; the others were already acknowledged or do not exist.",
                    "%(count)d alerts acknowledged; the others were already acknowledged or do not exist.",
                    done,
                )
                % {"count": done},
            )
    return redirect(_back(request, reverse("alerts:inbox")))


# --- lowering a company's recommended limit ------------------------------------------------------------------------


class LimitLowerForm(forms.Form):
    limit = AmountField(
        min_value=0,
        max_digits=14,
        decimal_places=2,
        label=gettext_lazy("New recommended limit (€)"),
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )
    reason = forms.CharField(
        max_length=limits.REASON_MAX_LENGTH,
        label=gettext_lazy("Reason"),
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    alert = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    next = forms.CharField(required=False, widget=forms.HiddenInput)


def _id_or_none(value: Any) -> int | None:
    text = str(value or "")
    return int(text) if text.isdigit() and len(text) < 12 else None


def _company_by_siren(request: HttpRequest, siren: str) -> Company:
    company = (
        dossier_selectors.companies_for_user(request.user).filter(siren=siren).first() if siren.isdigit() else None
    )
    if company is None:
        raise Http404(_("No company with this SIREN is on file."))
    return company


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def company_limit(request: HttpRequest, siren: str) -> HttpResponse:
    """The form that lowers a company's recommended limit, reached from an alert or the company page."""
    require_role(request, CAN_DECIDE)
    company = _company_by_siren(request, siren)
    posted = request.method == "POST"
    if posted:
        form = LimitLowerForm(request.POST)
    else:
        form = LimitLowerForm(initial={"alert": _id_or_none(request.GET.get("alert")), "next": request.GET.get("next")})
    alert_id = _id_or_none((request.POST if posted else request.GET).get("alert"))
    alert = None
    if alert_id:
        alert = (
            selectors.alerts_for_user(request.user)
            .select_related("negative_event")
            .filter(pk=alert_id, company=company)
            .first()
        )
    if posted and form.is_valid():
        if alert_id and alert is None:
            form.add_error(None, _("This alert is not about this company."))
        else:
            try:
                limits.company_limit_lower(
                    company=company,
                    limit=form.cleaned_data["limit"],
                    reason=form.cleaned_data["reason"],
                    user=request.user,
                    alert=alert,
                )
            except ValidationError as error:
                apply_service_errors(form, error)
            except PermissionDenied as error:
                form.add_error(None, str(error))
            else:
                messages.success(
                    request,
                    _("The recommended limit of %(company)s is now %(limit)s €.")
                    % {"company": company.name or company.siren, "limit": company.recommended_limit},
                )
                return redirect(_back(request, reverse("dossiers:company", args=[company.siren])))
    status = 400 if posted else 200
    return render(
        request,
        "alerts/limit_form.html",
        {
            "company": company,
            "form": form,
            "alert": alert,
            "alert_what": inbox.alert_what(alert) if alert else "",
            "exposure": dossier_selectors.company_exposure(request.user, company),
            "history": limits.company_limit_history(company),
        },
        status=status,
    )


# --- an analyst records a negative event -----------------------------------------------------------------------------

RECORDABLE_KINDS = (
    NegativeEvent.Kind.INSOLVENCY_PROCEEDING,
    NegativeEvent.Kind.PAYMENT_DELAY,
    NegativeEvent.Kind.SEPA_INCIDENT,
    NegativeEvent.Kind.DEBT_COLLECTION,
    NegativeEvent.Kind.ACCOUNTS_PUBLISHED,
)


class NegativeEventForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[(kind.value, inbox.EVENT_KIND_LABELS[kind]) for kind in RECORDABLE_KINDS],
        label=gettext_lazy("What happened"),
    )
    occurred_on = forms.DateField(
        label=gettext_lazy("Date of the event"), widget=forms.DateInput(attrs={"type": "date"})
    )
    amount = AmountField(
        required=False,
        min_value=0,
        max_digits=14,
        decimal_places=2,
        label=gettext_lazy("Amount (€)"),
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )
    days_late = forms.IntegerField(
        required=False, min_value=1, max_value=3650, label=gettext_lazy("Days late (payment delay)")
    )
    reason_code = forms.RegexField(
        required=False,
        regex=r"^\s*[A-Za-z0-9]{4}\s*$",
        max_length=20,
        label=gettext_lazy("Reason code (SEPA incident, e.g. AM04)"),
        error_messages={"invalid": gettext_lazy("A SEPA reason code is four letters or digits, e.g. AM04.")},
    )
    note = forms.CharField(
        required=False, max_length=1000, label=gettext_lazy("Note"), widget=forms.Textarea(attrs={"rows": 2})
    )

    # The rules between fields (a future date, days late only for a payment delay...) are the service's:
    # alerts.negative_events answers in the analyst's language, keyed by field (apply_service_errors).


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def company_event_record(request: HttpRequest, siren: str) -> HttpResponse:
    """An analyst records a negative event on a company: the service alerts, tells the partners and re-scores."""
    require_role(request, CAN_DECIDE)
    company = _company_by_siren(request, siren)
    form = NegativeEventForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        from .negative_events import negative_event_record

        data = form.cleaned_data
        try:
            event = negative_event_record(
                user=request.user,
                company=company,
                kind=data["kind"],
                occurred_on=data["occurred_on"],
                amount=data.get("amount"),
                days_late=data.get("days_late"),
                reason_code=(data.get("reason_code") or "").strip(),
                note=(data.get("note") or "").strip(),
            )
        except ValidationError as error:
            apply_service_errors(form, error)
        except PermissionDenied as error:
            form.add_error(None, str(error))
        else:
            messages.success(
                request,
                _("%(kind)s recorded for %(company)s.")
                % {"kind": inbox.EVENT_KIND_LABELS.get(event.kind, event.kind), "company": company.name or siren},
            )
            return redirect("dossiers:company", siren=company.siren)
    return render(
        request,
        "alerts/event_form.html",
        {"company": company, "event_form": form},
        status=400 if request.method == "POST" else 200,
    )


# --- the admins' webhook pages -----------------------------------------------------------------------------------


def _endpoint_state(endpoint: WebhookEndpoint) -> str:
    if not endpoint.is_active:
        return "disabled"
    if endpoint.paused_at is not None:
        return "paused"
    return "active"


DELIVERY_STATUS_LABELS = {
    WebhookDelivery.Status.PENDING: gettext_lazy("Pending"),
    WebhookDelivery.Status.DELIVERED: gettext_lazy("Delivered"),
    WebhookDelivery.Status.FAILED: gettext_lazy("Failed (retries exhausted)"),
    WebhookDelivery.Status.CANCELLED: gettext_lazy("Cancelled (endpoint disabled)"),
    WebhookDelivery.Status.HELD: gettext_lazy("Held for the daily digest"),
    WebhookDelivery.Status.DIGESTED: gettext_lazy("Sent in a digest"),
}
STATE_LABELS = {
    "active": gettext_lazy("Active"),
    "paused": gettext_lazy("Paused"),
    "disabled": gettext_lazy("Disabled"),
}


@login_required
@require_safe
def webhook_list(request: HttpRequest) -> HttpResponse:
    require_role(request, {ADMIN})
    endpoints = (
        WebhookEndpoint.objects.select_related("partner")
        .only(
            "pk",
            "url",
            "event_types",
            "mode",
            "is_active",
            "paused_at",
            "disabled_reason",
            "disabled_at",
            "failing_since",
            "created_at",
            "partner__name",
        )
        .annotate(pending=Count("deliveries", filter=Q(deliveries__status=WebhookDelivery.Status.PENDING)))
        .order_by("partner__name", "created_at", "pk")
    )
    page = seek_page(endpoints, request.GET.get("page"), PAGE_SIZE)
    rows = [(endpoint, _endpoint_state(endpoint)) for endpoint in page.object_list]
    return render(request, "alerts/webhooks.html", {"page": page, "rows": rows, "state_labels": STATE_LABELS})


def _endpoint_or_404(pk: Any) -> WebhookEndpoint:
    return get_or_404(WebhookEndpoint.objects.select_related("partner").defer("secret", "previous_secret"), pk)


@login_required
@require_safe
def webhook_detail(request: HttpRequest, pk: int) -> HttpResponse:
    require_role(request, {ADMIN})
    endpoint = _endpoint_or_404(pk)
    deliveries = selectors.webhook_deliveries_of(endpoint).defer("payload").prefetch_related("attempt_log")
    page = seek_page(deliveries, request.GET.get("page"), DELIVERIES_PAGE_SIZE)
    counts = dict(
        selectors.webhook_deliveries_of(endpoint)
        .order_by()
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    state = _endpoint_state(endpoint)
    return render(
        request,
        "alerts/webhook_detail.html",
        {
            "endpoint": endpoint,
            "state": state,
            "state_label": STATE_LABELS[state],
            "page": page,
            "rows": [(delivery, DELIVERY_STATUS_LABELS[delivery.status]) for delivery in page.object_list],
            "counts": [(label, counts[value]) for value, label in DELIVERY_STATUS_LABELS.items() if counts.get(value)],
            "redeliverable": {
                WebhookDelivery.Status.DELIVERED,
                WebhookDelivery.Status.FAILED,
                WebhookDelivery.Status.CANCELLED,
                WebhookDelivery.Status.DIGESTED,
            },
        },
    )


def _webhook_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    require_role(request, {ADMIN})
    endpoint = _endpoint_or_404(pk)
    actor = Actor(user=request.user)
    try:
        if action == "pause":
            services.webhook_endpoint_pause(endpoint=endpoint, actor=actor)
            messages.success(request, _("Endpoint paused: events wait until it is resumed."))
        else:
            services.webhook_endpoint_resume(endpoint=endpoint, actor=actor)
            messages.success(request, _("Endpoint resumed: waiting events are sent now."))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("alerts:webhook", pk=endpoint.pk)


@login_required
@require_POST
def webhook_pause(request: HttpRequest, pk: int) -> HttpResponse:
    return _webhook_action(request, pk, "pause")


@login_required
@require_POST
def webhook_resume(request: HttpRequest, pk: int) -> HttpResponse:
    return _webhook_action(request, pk, "resume")


@login_required
@require_POST
def webhook_redeliver(request: HttpRequest, pk: int, delivery_pk: int) -> HttpResponse:
    require_role(request, {ADMIN})
    endpoint = _endpoint_or_404(pk)
    delivery = get_or_404(WebhookDelivery.objects.filter(endpoint=endpoint).defer("payload"), delivery_pk)
    try:
        services.webhook_redeliver(delivery=delivery, actor=Actor(user=request.user))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request, _("Delivery %(id)s will be sent again, with the same webhook-id.") % {"id": delivery.message_id}
        )
    return redirect(_back(request, reverse("alerts:webhook", args=[endpoint.pk])))
