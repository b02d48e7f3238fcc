"""The model card of a version: what it is, what it learnt from, how good it is, what it is for, where it stops.

``model_card`` gathers it from the stored version (its metrics, comparison, reference and calibration) and the
retraining that made it, as JSON-able data in the active language; ``model_card_markdown`` renders it as a
document a validator, an auditor or a supervisor can read without the back-office.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from scoring.model.comparison import gates_in_language
from scoring.model.features import FEATURES_BY_NAME
from scoring.models import ModelVersion, RetrainingRun

# Below these the card warns: too few defaults to learn or judge much, too small a book.
FEW_DEFAULTS = 100
SMALL_BOOK = 1000
# A feature missing in at least this share of the training files is named among the limits.
MANY_MISSING = 0.3

_METRIC_KEYS = (
    "estimate",
    "auc",
    "gini",
    "ks",
    "brier",
    "logloss",
    "default_rate",
    "mean_pd",
    "n_train",
    "n_valid",
    "folds",
    "fold_order",
    "fold_auc",
    "trees",
    "max_depth",
    "candidate",
    "validation",
    "reliability_by_decile",
)


def model_card(model_version: ModelVersion) -> dict[str, Any]:
    """The card of ``model_version`` as JSON-able data: identity, data, features, metrics, comparison,
    calibration, intended use and known limits."""
    metrics = model_version.metrics or {}
    run = (
        RetrainingRun.objects.filter(challenger=model_version)
        .select_related("started_by")
        .order_by("-created_at")
        .first()
    )
    reference_features = (model_version.reference or {}).get("features") or {}
    card = {
        "identity": {
            "label": model_version.label,
            "segment": model_version.segment,
            "status": model_version.status,
            "status_display": str(model_version.get_status_display()),
            "version": model_version.version,
            "created_at": _iso(model_version.created_at),
            "trained_by": model_version.trained_by,
            "promoted_at": _iso(model_version.promoted_at),
            "retired_at": _iso(model_version.retired_at),
            "decided_by": model_version.decided_by.get_username() if model_version.decided_by_id else None,
            "decided_at": _iso(model_version.decided_at),
            "decision_note": model_version.decision_note,
        },
        "data": {
            "training_window": dict(model_version.training_window or {}),
            "data_hash": model_version.data_hash,
            "rows": metrics.get("n_train"),
            "validation_rows": metrics.get("n_valid"),
            "validation_default_rate": metrics.get("default_rate"),
            "labelled": dict(run.labelled) if run and run.labelled else None,
            "retraining": (
                {
                    "id": run.pk,
                    "trigger": run.trigger,
                    "started_by": run.started_by.get_username() if run.started_by_id else None,
                    "finished_at": _iso(run.finished_at),
                }
                if run
                else None
            ),
        },
        "features": _features(model_version, reference_features),
        "metrics": {key: metrics[key] for key in _METRIC_KEYS if key in metrics},
        "comparison": _comparison(model_version.comparison or {}),
        "calibration": _calibration(model_version.calibration or {}, metrics.get("calibration") or {}),
        "intended_use": intended_use(model_version.segment),
    }
    card["limits"] = _limits(model_version, card)
    return card


def intended_use(segment: str) -> str:
    if segment == "b2c":
        return _(
            "Probability of default of an individual applying for consumer credit, over a 12-month horizon: "
            "decision support, with an analyst reviewing refusals, referrals and overrides."
        )
    return _(
        "Probability of default of a French company applying for trade credit or a loan, over a 12-month "
        "horizon: decision support, with an analyst reviewing refusals, referrals and overrides."
    )


def model_card_markdown(card: dict[str, Any]) -> str:
    """The card as a Markdown document."""
    identity, data = card["identity"], card["data"]
    lines = [
        "# " + _("Model card: %(label)s") % {"label": identity["label"]},
        "",
        "## " + _("Identity"),
        "",
        _row(_("Segment"), identity["segment"]),
        _row(_("Version"), identity["version"]),
        _row(_("Status"), identity.get("status_display") or identity["status"]),
        _row(_("Registered"), identity["created_at"]),
        _row(_("Trained by"), identity["trained_by"]),
        _row(_("Promoted"), identity["promoted_at"]),
        _row(_("Retired"), identity["retired_at"]),
        _row(_("Decided by"), identity["decided_by"]),
        _row(_("Decided"), identity["decided_at"]),
        _row(_("Decision note"), identity["decision_note"]),
        "",
        "## " + _("Intended use"),
        "",
        card["intended_use"],
        "",
        "## " + _("Training data"),
        "",
        _row(
            _("Training window"),
            f"{data['training_window'].get('from', '—')} → {data['training_window'].get('to', '—')}"
            if data["training_window"]
            else None,
        ),
        _row(_("Data hash"), f"`{data['data_hash']}`" if data["data_hash"] else None),
        _row(_("Files trained on"), data["rows"]),
        _row(_("Validation files"), data["validation_rows"]),
        _row(_("Validation default rate"), _pct(data["validation_default_rate"])),
    ]
    labelled = data.get("labelled")
    if labelled:
        text = labelled.get("summary") or ", ".join(
            f"{key}: {value}" for key, value in labelled.items() if isinstance(value, int | float | str)
        )
        if labelled.get("train_rows") is not None and labelled.get("holdout_rows") is not None:
            text += " " + _("Split: %(train)s to train on, the latest %(holdout)s held out.") % {
                "train": labelled["train_rows"],
                "holdout": labelled["holdout_rows"],
            }
        lines.append(f"- {text}" if labelled.get("summary") else _row(_("Labelled set"), text))
    if data.get("retraining"):
        run = data["retraining"]
        lines.append(
            _row(
                _("Retraining"),
                _("#%(id)s (%(trigger)s), finished %(finished)s")
                % {"id": run["id"], "trigger": run["trigger"], "finished": run["finished_at"] or "—"},
            )
        )
    lines += [
        "",
        "## " + _("Features and constraints"),
        "",
        "| "
        + " | ".join([_("Feature"), _("Name"), _("Kind"), _("Monotone constraint"), _("Missing in training")])
        + " |",
        "|---|---|---|---|---|",
    ]
    for feature in card["features"]:
        lines.append(
            f"| {feature['label']} | `{feature['name']}` | "
            f"{_('categorical') if feature['categorical'] else _('numeric')} | {feature['constraint']} | "
            f"{_pct(feature['missing_share'])} |"
        )
    lines += ["", "## " + _("Validation metrics"), ""]
    metrics = card["metrics"]
    if metrics:
        estimate = (
            _("out of fold over %(n)s files") % {"n": metrics.get("n_valid")}
            if metrics.get("estimate") == "out_of_fold"
            else _("on the latest %(n)s files") % {"n": metrics.get("n_valid")}
        )
        lines += [
            _("Estimated %(how)s.") % {"how": estimate},
            "",
            "| AUC | Gini | KS | Brier | " + _("Log-loss") + " | " + _("Default rate") + " | " + _("Mean PD") + " |",
            "|---|---|---|---|---|---|---|",
            "| "
            + " | ".join(
                _num(metrics.get(key), digits)
                for key, digits in (("auc", 4), ("gini", 4), ("ks", 4), ("brier", 5), ("logloss", 5))
            )
            + f" | {_pct(metrics.get('default_rate'))} | {_pct(metrics.get('mean_pd'))} |",
        ]
        if metrics.get("trees") is not None:
            lines += [
                "",
                _("%(trees)s trees of depth %(depth)s")
                % {"trees": metrics["trees"], "depth": metrics.get("max_depth", "?")}
                + (f" ({metrics['candidate']})" if metrics.get("candidate") else "")
                + ".",
            ]
        if metrics.get("validation"):
            lines += ["", metrics["validation"]]
    else:
        lines.append(_("No metrics stored."))
    lines += ["", "## " + _("Calibration"), ""]
    calibration = card["calibration"]
    if calibration["calibrated"]:
        lines.append(
            _("Platt scaling on the margin: PD = sigmoid(%(a)s · margin + %(b)s).")
            % {"a": _num(calibration["a"], 4), "b": _num(calibration["b"], 4)}
        )
    else:
        lines.append(_("Not calibrated") + (f": {calibration['reason']}." if calibration.get("reason") else "."))
    lines += ["", "## " + _("Comparison with the champion"), ""]
    comparison = card["comparison"]
    if comparison is None:
        lines.append(_("No champion/challenger comparison stored for this version."))
    else:
        lines += _comparison_lines(comparison)
    lines += ["", "## " + _("Known limits"), ""]
    lines += [f"- {limit}" for limit in card["limits"]] or [_("None recorded.")]
    return "\n".join(lines) + "\n"


def _features(model_version: ModelVersion, reference: dict[str, Any]) -> list[dict[str, Any]]:
    french = (translation.get_language() or "").startswith("fr")
    constraints = list(model_version.monotone_constraints or [])
    categorical = set((model_version.categories or {}).keys())
    features = []
    for i, name in enumerate(model_version.feature_names or []):
        known = FEATURES_BY_NAME.get(name)
        label = (known.label_fr if french else known.label_en) if known else name
        direction = int(constraints[i]) if i < len(constraints) else 0
        if name in categorical:
            constraint = _("none (categories)")
        elif direction > 0:
            constraint = _("risk rises with the value")
        elif direction < 0:
            constraint = _("risk falls as the value rises")
        else:
            constraint = _("none")
        entry = reference.get(name) or {}
        features.append(
            {
                "name": name,
                "label": label,
                "categorical": name in categorical,
                "monotone": direction,
                "constraint": constraint,
                "missing_share": entry.get("missing"),
            }
        )
    return features


def _comparison(comparison: dict[str, Any]) -> dict[str, Any] | None:
    if not comparison:
        return None
    keep = ("holdout", "champion", "challenger", "difference", "calibration", "gates", "passed", "settings")
    return {key: comparison.get(key) for key in keep}


def _calibration(calibration: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    if calibration:
        return {
            "calibrated": True,
            "method": report.get("method", "platt_on_margin"),
            "a": calibration.get("a"),
            "b": calibration.get("b"),
        }
    return {"calibrated": False, "method": None, "a": None, "b": None, "reason": report.get("reason")}


def _limits(model_version: ModelVersion, card: dict[str, Any]) -> list[str]:
    limits = []
    data = card["data"]
    labelled = data.get("labelled") or {}
    rows = labelled.get("rows", data.get("rows"))
    defaults = labelled.get("defaults")
    if defaults is None and data.get("validation_rows") and data.get("validation_default_rate") is not None:
        validation_defaults = round(data["validation_rows"] * data["validation_default_rate"])
        if validation_defaults < FEW_DEFAULTS:
            limits.append(
                _("Validated on about %(n)s defaults (fewer than %(min)s): its figures carry wide uncertainty.")
                % {"n": validation_defaults, "min": FEW_DEFAULTS}
            )
    elif defaults is not None and defaults < FEW_DEFAULTS:
        limits.append(
            _("Learnt from %(n)s defaults (fewer than %(min)s): its figures carry wide uncertainty.")
            % {"n": defaults, "min": FEW_DEFAULTS}
        )
    if rows is not None and rows < SMALL_BOOK:
        limits.append(
            _("Trained on a small book of %(n)s files (fewer than %(min)s).") % {"n": rows, "min": SMALL_BOOK}
        )
    comparison = card["comparison"] or {}
    saw = (comparison.get("holdout") or {}).get("champion_saw")
    if saw:
        limits.append(
            _(
                "The comparison holdout holds %(n)s files the champion was trained on: "
                "the champion's figures are optimistic there."
            )
            % {"n": saw}
        )
    failed = [gate["name"] for gate in comparison.get("gates") or [] if not gate.get("passed")]
    if failed:
        limits.append(_("Promotion gates not passed: %(gates)s.") % {"gates": ", ".join(failed)})
    sparse = [f for f in card["features"] if (f["missing_share"] or 0) >= MANY_MISSING]
    if sparse:
        limits.append(
            _("Often missing in training (the model learnt to route the gap): %(features)s.")
            % {"features": ", ".join(f"{f['label']} ({f['missing_share']:.0%})" for f in sparse)}
        )
    others = [segment for segment in ("b2b", "b2c") if segment != model_version.segment]
    limits.append(
        _("Trained on %(segment)s files only: not for %(others)s applicants.")
        % {"segment": model_version.segment, "others": ", ".join(others)}
    )
    limits.append(
        _(
            "A repayment becomes a label only %(months)s months after the decision: the latest months of "
            "applications teach it defaults sooner than repayments."
        )
        % {"months": settings.OUTCOME_PERFORMANCE_WINDOW_MONTHS}
    )
    if model_version.status in (ModelVersion.Status.RETIRED, ModelVersion.Status.REJECTED):
        limits.append(_("This version no longer scores applications (%(status)s).") % {"status": model_version.status})
    return limits


def _comparison_lines(comparison: dict[str, Any]) -> list[str]:
    holdout = comparison.get("holdout") or {}
    lines = [
        _("Out-of-time holdout: %(rows)s files, %(defaults)s defaults, %(start)s → %(end)s.")
        % {
            "rows": holdout.get("rows"),
            "defaults": holdout.get("defaults"),
            "start": holdout.get("from"),
            "end": holdout.get("to"),
        },
        "",
        "| " + _("Model") + " | AUC | Gini | KS | Brier | " + _("Mean PD") + " |",
        "|---|---|---|---|---|---|",
    ]
    for role, figures in ((_("Champion"), comparison.get("champion")), (_("Challenger"), comparison.get("challenger"))):
        if not figures:
            continue
        name = f"{role} {figures.get('label') or ''}".strip()
        lines.append(
            f"| {name} | "
            + " | ".join(
                _with_ci(figures, key, digits) for key, digits in (("auc", 4), ("gini", 4), ("ks", 4), ("brier", 5))
            )
            + f" | {_with_ci(figures, 'mean_pd', 4)} |"
        )
    difference = comparison.get("difference") or {}
    if difference:
        lines += [
            "",
            _("Challenger minus champion (paired bootstrap, 95 %%): %(figures)s.")
            % {
                "figures": "; ".join(
                    f"{key} {_signed(d.get('value'))} [{_signed(d.get('low'))}, {_signed(d.get('high'))}]"
                    for key, d in difference.items()
                )
            },
        ]
    bands = comparison.get("calibration") or []
    if bands:
        lines += [
            "",
            "| "
            + " | ".join(
                [
                    _("Band"),
                    _("Files"),
                    _("Defaults"),
                    _("Observed rate (%(level)s interval)") % {"level": "95 %"},
                    _("Challenger mean PD"),
                    _("Champion mean PD"),
                ]
            )
            + " |",
            "|---|---|---|---|---|---|",
        ]
        for band in bands:
            lines.append(
                f"| {band['band']} | {band['n']} | {band['defaults']} | {_pct(band['observed_rate'])} "
                f"({_pct(band['observed_low'])} – {_pct(band['observed_high'])}) | "
                f"{_pct(band['challenger_mean_pd'])} | {_pct(band['champion_mean_pd'])} |"
            )
    gates = gates_in_language(comparison)
    if gates:
        lines += [
            "",
            _("Gates: %(verdict)s.") % {"verdict": _("passed") if comparison.get("passed") else _("not passed")},
            "",
        ]
        lines += [f"- **{gate['name']}** {'✔' if gate['passed'] else '✘'} {gate['detail']}" for gate in gates]
    return lines


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _row(label: str, value: Any) -> str:
    return f"- **{label}**: {'—' if value in (None, '') else value}"


def _num(value: Any, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _signed(value: Any) -> str:
    return "—" if value is None else f"{value:+.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:+.6f}"


def _pct(value: Any) -> str:
    return "—" if value is None else f"{value:.2%}"


def _with_ci(figures: dict[str, Any], key: str, digits: int) -> str:
    low, high = (figures.get("ci") or {}).get(key) or (None, None)
    text = _num(figures.get(key), digits)
    return text if low is None else f"{text} ({_num(low, digits)}–{_num(high, digits)})"
