"""The decision policy in the back-office: every version per segment, and a form for risk managers.

A new version is previewed before it is published: the form's values are replayed on the segment's last
scored dossiers (``scoring.policy.preview``) and the decision mix is shown under the current version and
the draft. Publishing checks that the values are the ones previewed.
"""

from __future__ import annotations

import hashlib
import json
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
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from riskoffice.roles import CAN_READ_DOSSIERS, SENIOR_ANALYST, has_any_role
from riskoffice.web import apply_service_errors, require_role
from scoring.models import PolicyVersion, Segment
from scoring.policy import versions as policies
from scoring.policy.apply import evidence_sources, refer_rules
from scoring.policy.preview import policy_preview, preview_size
from scoring.selectors import policy_versions_for_user

CAN_EDIT = {SENIOR_ANALYST}  # risk managers own the policy
HUNDRED = Decimal(100)


class PolicyForm(forms.Form):
    """Thresholds in percent as risk managers speak of them; the service stores fractions."""

    accept_max_pd = forms.DecimalField(
        label=gettext_lazy("Accept below a PD of (%)"),
        max_digits=6,
        decimal_places=3,
        widget=forms.NumberInput(attrs={"step": "0.01"}),
        help_text=gettext_lazy("A probability of default below this is recommended for acceptance."),
    )
    guarantee_max_pd = forms.DecimalField(
        label=gettext_lazy("Ask for a guarantee below a PD of (%)"),
        max_digits=6,
        decimal_places=3,
        widget=forms.NumberInput(attrs={"step": "0.01"}),
        help_text=gettext_lazy("Between the two thresholds a guarantee is asked for; from this one up, refuse."),
    )
    open_insolvency_proceeding = forms.BooleanField(
        required=False,
        label=gettext_lazy("Refuse when an insolvency proceeding is open"),
    )
    sanctioned_naf_codes = forms.CharField(
        required=False,
        label=gettext_lazy("Refuse these NAF codes"),
        max_length=2000,
        widget=forms.TextInput(attrs={"placeholder": "92.00Z, 64.99Z"}),
        help_text=gettext_lazy("Comma-separated, like 62.01Z: two digits, a dot, two digits, a letter."),
    )
    max_amount = forms.DecimalField(
        required=False,
        label=gettext_lazy("Refuse requests above (€)"),
        max_digits=14,
        decimal_places=2,
        help_text=gettext_lazy("Leave empty for no cap."),
    )
    limit_revenue_share = forms.DecimalField(
        label=gettext_lazy("Recommended limit: share of revenue"),
        max_digits=4,
        decimal_places=3,
        widget=forms.NumberInput(attrs={"step": "0.01"}),
        help_text=gettext_lazy(
            "0.10 offers up to a tenth of revenue, less as the PD nears the guarantee threshold; 0 recommends no limit."
        ),
    )
    refer_when_thin = forms.BooleanField(
        required=False,
        label=gettext_lazy("Refer to an analyst when the data is too thin"),
    )
    min_data_sources = forms.IntegerField(
        min_value=0,
        label=gettext_lazy("Data sources required"),
        help_text=gettext_lazy(
            "How many of the sources that describe the applicant's finances must have data (financial "
            "statements and bank data for a company, bank data for an individual); with fewer, refer."
        ),
    )
    refer_unlimited_above = forms.DecimalField(
        required=False,
        label=gettext_lazy("Refer an accept without a limit above (€)"),
        max_digits=14,
        decimal_places=2,
        help_text=gettext_lazy(
            "When no limit can be computed (no revenue) and more than this is requested, refer instead of "
            "accepting. Leave empty never to refer for that."
        ),
    )
    note = forms.CharField(
        label=gettext_lazy("Why this version"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("What it changes and who asked. Kept with the version and in the audit trail."),
    )

    def __init__(self, *args: Any, segment: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["min_data_sources"].widget.attrs["max"] = len(evidence_sources(segment))  # the service checks

    @classmethod
    def initial_from(cls, policy: PolicyVersion | None) -> dict[str, Any]:
        if policy is None:
            return {"open_insolvency_proceeding": True, "refer_when_thin": True, "min_data_sources": 1}
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
            "refer_when_thin": data["refer_when_thin"],
            "min_data_sources": data["min_data_sources"],
            "refer_unlimited_above": None
            if data.get("refer_unlimited_above") is None
            else float(data["refer_unlimited_above"]),
        }


def _values_digest(values: dict[str, Any]) -> str:
    """A fingerprint of the values a preview showed, so that publishing proves they were previewed."""
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:20]


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
                "refer": refer_rules(current) if current else None,
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
    """Edit → "Preview effect" (the mix under the current version and the draft) → "Publish"."""
    require_role(request, CAN_EDIT)
    if segment not in Segment.values:
        raise Http404(_("No such segment."))
    current = PolicyVersion.objects.filter(segment=segment, is_current=True).select_related("created_by").first()
    size = preview_size(request.POST.get("last") or request.GET.get("last"))
    preview, digest, status = None, "", 200
    if request.method == "POST":
        form = PolicyForm(request.POST, segment=segment)
        publishing = request.POST.get("action") == "publish"
        if form.is_valid():
            try:
                draft = policies.policy_draft(segment=segment, values=form.policy_values())
            except ValidationError as error:
                apply_service_errors(form, error)
            else:
                values = policies.policy_values(draft)
                digest = _values_digest(values)
                if publishing and request.POST.get("previewed") == digest:
                    try:
                        policy = policies.policy_create_version(
                            segment=segment,
                            values=form.policy_values(),
                            note=form.cleaned_data["note"],
                            user=request.user,
                        )
                    except ValidationError as error:
                        apply_service_errors(form, error)
                    else:
                        messages.success(
                            request,
                            _("Version %(version)s of the %(segment)s policy is now current.")
                            % {"version": policy.version, "segment": Segment(segment).label},
                        )
                        return redirect(f"{reverse('scoring:policy')}#policy-{segment}")
                elif current is not None and policies.policy_values(current) == values:
                    form.add_error(
                        None,
                        _("Nothing changed: this is already version %(version)s of the policy.")
                        % {"version": current.version},
                    )
                else:
                    if publishing:  # values changed since the preview, or never previewed
                        messages.warning(
                            request, _("Review the effect of these values on past dossiers, then publish.")
                        )
                    preview = policy_preview(current=current, draft=draft, size=size)
        if not form.is_valid():
            status, preview = 400, None
    else:
        form = PolicyForm(initial=PolicyForm.initial_from(current), segment=segment)
    return render(
        request,
        "scoring/policy_form.html",
        {
            "form": form,
            "segment": segment,
            "segment_label": Segment(segment).label,
            "current": current,
            "preview": preview,
            "previewed": digest if preview is not None else "",
            "last": size,
        },
        status=status,
    )
