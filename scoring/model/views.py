"""Model governance in the back-office: champion and challenger per segment, retraining, drift, back-testing.

Senior analysts (risk managers) approve or reject a challenger, roll back to the previous champion and start a
retraining; auditors and admins read every page and act on none. The views validate and call the services of
``scoring.model.retraining`` (whose ``GovernanceError`` messages are written for the reader) and the reads of
``scoring.model.backtest``, ``card`` and ``shadow``; they hold no rule of their own.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from riskoffice.roles import ADMIN, AUDITOR, SENIOR_ANALYST, has_any_role
from riskoffice.scoping import get_or_404
from riskoffice.web import require_role
from scoring.model import backtest, card, retraining, shadow
from scoring.model import comparison as comparison_module
from scoring.models import Decision, DriftCheck, ModelVersion, RetrainingRun, Segment
from scoring.selectors import drift_checks_for_user, model_versions_for_user, retraining_runs_for_user

CAN_READ = {SENIOR_ANALYST, AUDITOR, ADMIN}
CAN_ACT = {SENIOR_ANALYST}  # risk managers own the model
RECENT_RUNS = 5  # per segment
DRIFT_HISTORY_DAYS = 30
TOP_FEATURES = 5
METRICS = (("auc", "AUC"), ("gini", "Gini"), ("ks", "KS"), ("brier", "Brier"))
LOWER_IS_BETTER = {"brier"}

GATE_TITLES = {
    "holdout_defaults": gettext_lazy("Enough defaults in the holdout"),
    "auc_not_worse": gettext_lazy("AUC not worse beyond noise"),
    "brier_not_worse": gettext_lazy("Brier score not worse beyond noise"),
    "calibration": gettext_lazy("Calibration by band within tolerance"),
}

# backtest.py's verdicts and override directions, as the page says them.
VERDICTS = {
    "within": gettext_lazy("within the interval"),
    "under-predicted": gettext_lazy("under-predicted"),
    "over-predicted": gettext_lazy("over-predicted"),
}
DIRECTIONS = {
    "more lenient": gettext_lazy("More lenient than the policy"),
    "stricter": gettext_lazy("Stricter than the policy"),
    "not overridden": gettext_lazy("Not overridden"),
}

# The card's metrics (scoring/model/card.py) shown one per line: key, label, how to format.
CARD_METRICS = (
    ("estimate", gettext_lazy("Estimated"), "code"),
    ("auc", "AUC", "number"),
    ("gini", "Gini", "number"),
    ("ks", "KS", "number"),
    ("brier", "Brier", "number"),
    ("logloss", gettext_lazy("Log-loss"), "number"),
    ("default_rate", gettext_lazy("Default rate"), "share"),
    ("mean_pd", gettext_lazy("Mean PD"), "share"),
    ("n_train", gettext_lazy("Files trained on"), "text"),
    ("n_valid", gettext_lazy("Validation files"), "text"),
    ("folds", gettext_lazy("Folds"), "text"),
    ("fold_order", gettext_lazy("Fold order"), "code"),
    ("trees", gettext_lazy("Trees"), "text"),
    ("max_depth", gettext_lazy("Depth"), "text"),
    ("candidate", gettext_lazy("Chosen candidate"), "text"),
    ("validation", gettext_lazy("Validation"), "text"),
)

CARD_CODES = {
    "out_of_fold": gettext_lazy("out of fold (cross-validation)"),
    "holdout": gettext_lazy("on the latest files, held out"),
    "time-ordered": gettext_lazy("time-ordered"),
    "stratified": gettext_lazy("stratified"),
}


class NoteForm(forms.Form):
    """Every decision on a model says why: kept with the version and in the audit trail."""

    note = forms.CharField(
        label=gettext_lazy("Why"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": gettext_lazy("Say why: a note is required.")},
    )


class RollbackForm(NoteForm):
    # The champion the reader saw: if another decision replaced it since, the rollback is refused as stale.
    champion = forms.IntegerField(widget=forms.HiddenInput, required=False)


# --- what the page shows, built from the stored comparison and checks ----------------------------------------


def _metric_rows(comparison: dict[str, Any]) -> list[dict[str, Any]]:
    """The comparison's metrics as table rows: champion, challenger, difference with its 95 % interval."""
    champion = comparison.get("champion") or {}
    challenger = comparison.get("challenger") or {}
    differences = comparison.get("difference") or {}
    rows = []
    for key, name in METRICS:
        if key not in challenger and key not in champion:
            continue
        difference = differences.get(key) or {}
        low, high = difference.get("low"), difference.get("high")
        # Beyond noise: the whole interval on one side of zero.
        if low is not None and high is not None and (low > 0 or high < 0):
            better = (low > 0) != (key in LOWER_IS_BETTER)
            verdict = "better" if better else "worse"
        else:
            verdict = "noise"
        rows.append(
            {
                "key": key,
                "name": name,
                "champion": champion.get(key),
                "champion_ci": (champion.get("ci") or {}).get(key),
                "challenger": challenger.get(key),
                "challenger_ci": (challenger.get("ci") or {}).get(key),
                "difference": difference.get("value"),
                "low": low,
                "high": high,
                "verdict": verdict,
                "lower_is_better": key in LOWER_IS_BETTER,
            }
        )
    return rows


def _shadow_view(challenger: ModelVersion) -> dict[str, Any]:
    """The shadow summary, with its cross-tab as a matrix: the champion's decisions down, the challenger's across."""
    summary = shadow.shadow_summary(challenger)
    labels = dict(Decision.choices)
    counts = {(cell["champion"], cell["challenger"]): cell["n"] for cell in summary.get("crosstab") or []}
    seen = {code for pair in counts for code in pair}
    decisions = [code for code in Decision.values if code in seen] + sorted(seen - set(Decision.values))
    matrix = [
        {
            "label": labels.get(row, row),
            "cells": [{"n": counts.get((row, column), 0), "agree": row == column} for column in decisions],
        }
        for row in decisions
    ]
    return {**summary, "columns": [labels.get(code, code) for code in decisions], "matrix": matrix}


def _titled_gates(comparison: dict[str, Any]) -> list[dict[str, Any]]:
    """The stored gates, titled and told in the reader's language."""
    return [
        {**gate, "title": GATE_TITLES.get(gate.get("name"), gate.get("name"))}
        for gate in comparison_module.gates_in_language(comparison)
    ]


def _card_metrics(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The card's validation metrics worth a line each, in a fixed order, formatted for the reader."""
    shown = []
    for key, name, kind in CARD_METRICS:
        value = metrics.get(key)
        if value is None or isinstance(value, dict | list):
            continue
        if kind == "share":
            text = f"{number_format(100 * value, decimal_pos=2)} %"
        elif kind == "code":
            text = str(CARD_CODES.get(value, value))
        elif kind == "number" and isinstance(value, float):
            text = number_format(value, decimal_pos=4)
        else:
            text = str(value)
        shown.append({"key": key, "name": name, "value": text})
    return shown


def _challenger_view(challenger: ModelVersion | None) -> dict[str, Any] | None:
    if challenger is None:
        return None
    comparison = challenger.comparison or {}
    gates = _titled_gates(comparison)
    failed = [gate for gate in gates if not gate.get("passed")]
    holdout = comparison.get("holdout") or {}
    return {
        "version": challenger,
        "comparison": comparison,
        "metrics": _metric_rows(comparison),
        "calibration": comparison.get("calibration") or [],
        "gates": gates,
        "failed_gates": failed,
        # The service decides; the page only tells the reader beforehand why approving would be refused.
        "approvable": bool(comparison) and bool(comparison.get("passed")) and not failed,
        "holdout": holdout,
        "champion_saw": holdout.get("champion_saw") or 0,
        "shadow": _shadow_view(challenger),
    }


def _drift_view(checks: list[DriftCheck]) -> dict[str, Any]:
    """The latest check (top features by PSI) and the daily history, oldest first, with bar widths."""
    latest = checks[0] if checks else None
    threshold = settings.MODEL_PSI_ALERT
    features = []
    if latest is not None:
        ranked = sorted((latest.psi_features or {}).items(), key=lambda item: -(item[1] or 0))[:TOP_FEATURES]
        features = [{"name": name, "psi": value, "alert": (value or 0) > threshold} for name, value in ranked]
    scale = max([threshold * 2, *[check.psi_max or 0 for check in checks]])
    history = [
        {
            "check": check,
            "width": round(100 * min(check.psi_max or 0, scale) / scale, 1),
            "alert": (check.psi_max or 0) > threshold,
        }
        for check in reversed(checks)
    ]
    return {
        "latest": latest,
        "features": features,
        "history": history,
        "threshold": threshold,
        "threshold_at": round(100 * threshold / scale, 1),
    }


def _backtest_view(result: dict[str, Any]) -> dict[str, Any]:
    """Back-testing by band, each band's verdict in the reader's language."""

    def labelled(bands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**band, "verdict_label": VERDICTS.get(band.get("verdict"), band.get("verdict"))} for band in bands]

    return {
        **result,
        "bands": labelled(result.get("bands") or []),
        "periods": [{**period, "bands": labelled(period.get("bands") or [])} for period in result.get("periods") or []],
    }


def _overrides_view(result: dict[str, Any]) -> dict[str, Any]:
    groups = [
        {**group, "direction_label": DIRECTIONS.get(group.get("direction"), group.get("direction"))}
        for group in result.get("groups") or []
    ]
    return {**result, "groups": groups if any(group.get("n") for group in groups) else []}


def _segments(request: HttpRequest, invalid: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Per segment: its versions, champion and challenger, retraining runs, drift and back-testing."""
    versions: dict[str, list[ModelVersion]] = {}
    for version in model_versions_for_user(request.user):
        versions.setdefault(version.segment, []).append(version)
    since = timezone.localdate() - timedelta(days=DRIFT_HISTORY_DAYS)
    checks: dict[str, list[DriftCheck]] = {}
    for check in drift_checks_for_user(request.user).filter(day__gt=since).order_by("-day", "-pk"):
        checks.setdefault(check.segment, []).append(check)
    segments = []
    for value, label in Segment.choices:
        mine = versions.get(value, [])
        champion = next((v for v in mine if v.status == ModelVersion.Status.CHAMPION), None)
        challenger = next((v for v in mine if v.status == ModelVersion.Status.CHALLENGER), None)
        returns = retraining.rollback_target(mine)  # the version a rollback brings back, as the service picks it
        recent = list(
            retraining_runs_for_user(request.user).filter(segment=value).order_by("-created_at", "-pk")[:RECENT_RUNS]
        )
        backtested, overrides = backtest.backtest_and_overrides(value)
        segments.append(
            {
                "value": value,
                "label": label,
                "versions": mine,
                "champion": champion,
                "challenger": _challenger_view(challenger),
                "rollback_returns": returns,
                "runs": recent,
                "active_run": next((r for r in recent if r.status in {"queued", "running"}), None),
                "drift": _drift_view(checks.get(value, [])),
                "backtest": _backtest_view(backtested),
                "overrides": _overrides_view(overrides),
                "invalid": invalid if invalid and invalid.get("segment") == value else None,
            }
        )
    return segments


def _page(request: HttpRequest, *, invalid: dict[str, Any] | None = None, status: int = 200) -> HttpResponse:
    return render(
        request,
        "scoring/models.html",
        {
            "segments": _segments(request, invalid),
            "can_act": has_any_role(request.user, CAN_ACT),
            "psi_alert": settings.MODEL_PSI_ALERT,
        },
        status=status,
    )


def _back_to(segment: str) -> HttpResponse:
    return redirect(f"{reverse('scoring:models')}#models-{segment}")


def _segment_or_404(segment: str) -> str:
    if segment not in Segment.values:
        raise Http404(_("No such segment."))
    return segment


def _humanize(key: str) -> str:
    return str(key).replace("_", " ").capitalize()


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return number_format(round(value, 4), decimal_pos=None)
    if isinstance(value, list | tuple):
        return ", ".join(_cell(item) for item in value)
    if isinstance(value, dict):
        return "; ".join(f"{key}: {_cell(item)}" for key, item in value.items())
    return str(value)


def _card_value(value: Any) -> dict[str, Any]:
    """A card's value as the template shows it: named facts, a table of records, a list, or text."""
    if isinstance(value, dict):
        return {"kind": "facts", "facts": [{"name": _humanize(k), "value": _card_value(v)} for k, v in value.items()]}
    if isinstance(value, list | tuple) and value and all(isinstance(item, dict) for item in value):
        columns = list(dict.fromkeys(key for item in value for key in item))
        return {
            "kind": "table",
            "columns": [_humanize(column) for column in columns],
            "rows": [[_cell(item.get(column)) for column in columns] for item in value],
        }
    if isinstance(value, list | tuple):
        return {"kind": "list", "items": [_cell(item) for item in value]}
    return {"kind": "text", "text": _cell(value)}


def _card_sections(content: dict[str, Any]) -> list[dict[str, Any]]:
    """Top-level entries of the card this page does not know (a later card.py's), shown as they come."""
    return [{"key": key, "title": _humanize(key), "value": _card_value(value)} for key, value in content.items()]


# --- pages ----------------------------------------------------------------------------------------------------


@login_required
@require_GET
def model_list(request: HttpRequest) -> HttpResponse:
    require_role(request, CAN_READ)
    return _page(request)


@login_required
@require_GET
def model_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The version's model card: data window, features and constraints, metrics, limits, intended use."""
    require_role(request, CAN_READ)
    version = get_or_404(model_versions_for_user(request.user), pk)
    content = card.model_card(version)
    comparison = content.get("comparison") or {}
    known = {"identity", "data", "features", "metrics", "comparison", "calibration", "intended_use", "limits"}
    return render(
        request,
        "scoring/model_detail.html",
        {
            "version": version,
            "card": content,
            "metrics": _card_metrics(content.get("metrics") or {}),
            "comparison": comparison,
            "comparison_metrics": _metric_rows(comparison) if comparison else [],
            "gates": _titled_gates(comparison),
            # Whatever else a later card carries, shown as it comes rather than left out.
            "sections": _card_sections({key: value for key, value in content.items() if key not in known}),
        },
    )


@login_required
@require_GET
def model_card_download(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    """The model card as Markdown (to read or file) or JSON (to process)."""
    require_role(request, CAN_READ)
    version = get_or_404(model_versions_for_user(request.user), pk)
    content = card.model_card(version)
    if fmt == "md":
        body, content_type = card.model_card_markdown(content), "text/markdown; charset=utf-8"
    else:
        body = json.dumps(content, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False)
        content_type = "application/json"
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(True, f"model-card-{version.label}.{fmt}")
    return response


@login_required
@require_GET
def retraining_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """A run's status, stage and progress: the fragment the models page polls while the run is active."""
    require_role(request, CAN_READ)
    run = get_or_404(retraining_runs_for_user(request.user), pk)
    if not request.headers.get("HX-Request"):
        return render(request, "scoring/model_run.html", {"run": run})
    response = render(request, "scoring/_retraining_progress.html", {"run": run})
    if run.status not in {RetrainingRun.Status.QUEUED, RetrainingRun.Status.RUNNING}:
        # Polled only while active, so the run has just ended: reload the page, which now shows its challenger.
        response["HX-Refresh"] = "true"
    return response


# --- decisions ------------------------------------------------------------------------------------------------


def _challenger_decision(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    require_role(request, CAN_ACT)
    version = get_or_404(model_versions_for_user(request.user), pk)
    form = NoteForm(request.POST)
    if not form.is_valid():
        invalid = {"segment": version.segment, "action": action, "form": form}
        messages.error(request, _("Nothing was decided: correct the form below."))
        return _page(request, invalid=invalid, status=400)
    decide = retraining.challenger_approve if action == "approve" else retraining.challenger_reject
    try:
        decided = decide(model_version=version, user=request.user, note=form.cleaned_data["note"])
    except retraining.GovernanceError as error:
        messages.error(request, str(error))
    else:
        if action == "approve":
            message = _("%(label)s is now the champion of the %(segment)s segment.")
        else:
            message = _("%(label)s was rejected; the %(segment)s champion stays in place.")
        messages.success(request, message % {"label": decided.label, "segment": decided.get_segment_display()})
    return _back_to(version.segment)


@login_required
@require_POST
def model_approve(request: HttpRequest, pk: int) -> HttpResponse:
    return _challenger_decision(request, pk, "approve")


@login_required
@require_POST
def model_reject(request: HttpRequest, pk: int) -> HttpResponse:
    return _challenger_decision(request, pk, "reject")


@login_required
@require_POST
def model_rollback(request: HttpRequest, segment: str) -> HttpResponse:
    """The previous champion returns; the form names the champion the reader saw (a changed one: stale, refused)."""
    require_role(request, CAN_ACT)
    _segment_or_404(segment)
    form = RollbackForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Nothing was rolled back: correct the form below."))
        return _page(request, invalid={"segment": segment, "action": "rollback", "form": form}, status=400)
    try:
        restored = retraining.champion_rollback(
            segment=segment,
            user=request.user,
            note=form.cleaned_data["note"],
            seen_champion=form.cleaned_data.get("champion"),
        )
    except retraining.GovernanceError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            _("Rolled back: %(label)s is the champion of the %(segment)s segment again.")
            % {"label": restored.label, "segment": restored.get_segment_display()},
        )
    return _back_to(segment)


@login_required
@require_POST
def model_retrain(request: HttpRequest, segment: str) -> HttpResponse:
    """Start a retraining now; the page follows its progress."""
    require_role(request, CAN_ACT)
    _segment_or_404(segment)
    try:
        run = retraining.retraining_start(segment=segment, trigger=RetrainingRun.Trigger.MANUAL, user=request.user)
    except retraining.GovernanceError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            _("Retraining of the %(segment)s model queued (run %(run)s).")
            % {"segment": run.get_segment_display(), "run": run.pk},
        )
    return _back_to(segment)
