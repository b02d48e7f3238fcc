"""The decision policy in the back-office: every version per segment, and a form for risk managers."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from riskoffice.roles import CAN_READ_DOSSIERS, SENIOR_ANALYST, has_any_role
from riskoffice.web import require_role
from scoring.models import PolicyVersion, Segment
from scoring.policy import versions as policies
from scoring.selectors import policy_versions_for_user

CAN_EDIT = {SENIOR_ANALYST}  # risk managers own the policy
HUNDRED = Decimal(100)


class PolicyForm(forms.Form):
    """Thresholds in percent as risk managers speak of them; the service stores fractions."""

    accept_max_pd = forms.DecimalField(
        label="Accept below a PD of (%)",
        max_digits=6,
        decimal_places=3,
        widget=forms.NumberInput(attrs={"step": "0.01"}),
        help_text="A probability of default below this is recommended for acceptance.",
    )
    guarantee_max_pd = forms.DecimalField(
        label="Ask for a guarantee below a PD of (%)",
        max_digits=6,
        decimal_places=3,
        widget=forms.NumberInput(attrs={"step": "0.01"}),
        help_text="Between the two thresholds a guarantee is asked for; from this one up, refuse.",
    )
    open_insolvency_proceeding = forms.BooleanField(
        required=False,
        label="Refuse when an insolvency proceeding is open",
    )
    sanctioned_naf_codes = forms.CharField(
        required=False,
        label="Refuse these NAF codes",
        max_length=2000,
        widget=forms.TextInput(attrs={"placeholder": "e.g. 92.00Z, 64.99Z"}),
        help_text="Comma-separated, like 62.01Z: two digits, a dot, two digits, a letter.",
    )
    max_amount = forms.DecimalField(
        required=False,
        label="Refuse requests above (€)",
        max_digits=14,
        decimal_places=2,
        help_text="Leave empty for no cap.",
    )
    limit_revenue_share = forms.DecimalField(
        label="Recommended limit: share of revenue",
        max_digits=4,
        decimal_places=3,
        widget=forms.NumberInput(attrs={"step": "0.01"}),
        help_text="0.10 offers up to 10 % of revenue, less as the PD nears the guarantee threshold; "
        "0 recommends no limit.",
    )

    @classmethod
    def initial_from(cls, policy: PolicyVersion | None) -> dict[str, Any]:
        if policy is None:
            return {"open_insolvency_proceeding": True}
        values = policies.policy_values(policy)
        return {
            **values,
            "accept_max_pd": _as_percent(values["accept_max_pd"]),
            "guarantee_max_pd": _as_percent(values["guarantee_max_pd"]),
            "sanctioned_naf_codes": ", ".join(values["sanctioned_naf_codes"]),
            "limit_revenue_share": Decimal(str(values["limit_revenue_share"])),
        }

    def policy_values(self) -> dict[str, Any]:
        """The cleaned form as the values ``policy_create_version`` takes: PDs as fractions."""
        data = self.cleaned_data
        max_amount = data.get("max_amount")
        return {
            "accept_max_pd": float(data["accept_max_pd"] / HUNDRED),
            "guarantee_max_pd": float(data["guarantee_max_pd"] / HUNDRED),
            "limit_revenue_share": float(data["limit_revenue_share"]),
            "open_insolvency_proceeding": data["open_insolvency_proceeding"],
            "sanctioned_naf_codes": [code for code in re.split(r"[\s,;]+", data["sanctioned_naf_codes"]) if code],
            "max_amount": None if max_amount is None else float(max_amount),
        }


def _as_percent(fraction: float) -> Decimal:
    return (Decimal(str(fraction)) * HUNDRED).normalize()


def _zones(policy: PolicyVersion) -> dict[str, float]:
    """Widths (%) of the accept / guarantee / refuse zones on a PD axis long enough to show all three."""
    axis = min(1.0, max(0.2, 1.25 * policy.guarantee_max_pd))
    accept = 100 * policy.accept_max_pd / axis
    guarantee = 100 * (policy.guarantee_max_pd - policy.accept_max_pd) / axis
    return {
        "axis": axis,
        "accept": round(accept, 2),
        "guarantee": round(guarantee, 2),
        "refuse": round(max(0.0, 100 - accept - guarantee), 2),
    }


@login_required
def policy_list(request: HttpRequest) -> HttpResponse:
    require_role(request, CAN_READ_DOSSIERS)
    by_segment: dict[str, list[PolicyVersion]] = {}
    for version in policy_versions_for_user(request.user):
        by_segment.setdefault(version.segment, []).append(version)
    segments = []
    for value, label in Segment.choices:
        versions = by_segment.get(value, [])
        current = next((v for v in versions if v.is_current), None)
        segments.append(
            {
                "value": value,
                "label": label,
                "current": current,
                "versions": versions,
                "zones": _zones(current) if current else None,
            }
        )
    return render(
        request,
        "scoring/policy_list.html",
        {
            "segments": segments,
            "can_edit": has_any_role(request.user, CAN_EDIT),
        },
    )


@login_required
def policy_new(request: HttpRequest, segment: str) -> HttpResponse:
    require_role(request, CAN_EDIT)
    if segment not in Segment.values:
        raise Http404("No such segment.")
    current = PolicyVersion.objects.filter(segment=segment, is_current=True).select_related("created_by").first()
    status = 200
    if request.method == "POST":
        form = PolicyForm(request.POST)
        if form.is_valid():
            try:
                policy = policies.policy_create_version(segment=segment, values=form.policy_values(), user=request.user)
            except ValidationError as error:
                if hasattr(error, "error_dict"):
                    for field, errors in error.message_dict.items():
                        form.add_error(field if field in form.fields else None, errors)
                else:
                    form.add_error(None, error.messages)
            else:
                messages.success(
                    request, f"Version {policy.version} of the {Segment(segment).label} policy is now current."
                )
                return redirect(f"{reverse('scoring:policy')}#policy-{segment}")
        status = 400
    else:
        form = PolicyForm(initial=PolicyForm.initial_from(current))
    return render(
        request,
        "scoring/policy_form.html",
        {
            "form": form,
            "segment": segment,
            "segment_label": Segment(segment).label,
            "current": current,
        },
        status=status,
    )
