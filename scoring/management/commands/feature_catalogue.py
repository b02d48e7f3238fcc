"""Write docs/features.md from the feature catalogues and the score scales, or check it is up to date."""

from __future__ import annotations

import math
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from scoring.model.features import CATALOGUES, NO_DIRECTION, RISK_DOWN, RISK_UP, Feature
from scoring.policy.scale import BANDS, SCALES

DEFAULT_PATH = Path(settings.BASE_DIR) / "docs" / "features.md"
COMMAND = "python manage.py feature_catalogue"
SEGMENT_TITLES = {"b2b": "Companies (B2B)", "b2c": "Individuals (B2C)"}
DIRECTIONS = {
    RISK_UP: "risk rises with the value",
    RISK_DOWN: "risk falls as the value rises",
    NO_DIRECTION: "no fixed direction",
}
UNITS = {
    "eur": "€",
    "pct": "share (0–1)",
    "ratio": "ratio",
    "years": "years",
    "months": "months",
    "days": "days",
    "count": "count",
    "flag": "yes / no",
    "category": "category",
}
EXAMPLE_PDS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.10, 0.20, 0.50)


class Command(BaseCommand):
    help = "Generate docs/features.md (features per segment, score scales, bands) from the code; --check compares."

    def add_arguments(self, parser):
        parser.add_argument(
            "--check", action="store_true", help="Write nothing; fail if the file differs from what the code generates."
        )
        parser.add_argument("--path", type=Path, default=DEFAULT_PATH, help="Where the document lives.")

    def handle(self, *args, check: bool, path: Path, **options) -> None:
        expected = render()
        if check:
            current = path.read_text(encoding="utf-8") if path.exists() else None
            if current != expected:
                raise CommandError(
                    f"{path} is out of date with the feature catalogue; run `{COMMAND}` and commit the result."
                )
            self.stdout.write(f"{path} is up to date.")
            return
        path.write_text(expected, encoding="utf-8")
        self.stdout.write(self.style.SUCCESS(f"Wrote {path}."))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _pd(pd: float) -> str:
    return f"{100 * pd:g} %"


def feature_table(catalogue: tuple[Feature, ...]) -> list[str]:
    lines = ["| Name | Source | Meaning | Unit | Direction of risk |", "|---|---|---|---|---|"]
    for feature in catalogue:
        lines.append(
            f"| `{feature.name}` | {_cell(feature.source)} | {_cell(feature.meaning)} | "
            f"{UNITS.get(feature.unit, feature.unit)} | {DIRECTIONS[feature.direction]} |"
        )
    return lines


def render() -> str:
    lines = [
        "# Feature catalogue and score scales",
        "",
        "<!-- Generated from scoring/model/features.py and scoring/policy/scale.py",
        f"     by `{COMMAND}`. Do not edit by hand:",
        f"     change the code and run the command again; `{COMMAND} --check` (run by the tests) fails",
        "     when this file and the code disagree. -->",
        "",
        "Every model input, per segment: where it comes from, what it means, its unit and how risk moves",
        "with it. The direction of risk is also the model's monotone constraint: more of a *risk rises*",
        "feature can never lower a probability of default. A missing value stays missing; the model routes",
        "it and the explanation names it as missing data. A name means the same in every segment.",
        "",
    ]
    for segment, catalogue in CATALOGUES.items():
        lines += [f"## {SEGMENT_TITLES.get(segment, segment)}", "", *feature_table(catalogue), ""]

    lines += [
        "## Score scales",
        "",
        "The probability of default (PD, 12 months) becomes points by points-to-double-the-odds scaling:",
        "",
        "```",
        "score = offset + factor · ln((1 - PD) / PD)",
        "factor = PDO / ln 2,  offset = base score - factor · ln(base odds)",
        "```",
        "",
        "rounded to whole points and clamped to the segment's scale. Before rounding and clamping the map is",
        "strictly decreasing in PD; the published points never rise with PD, and inside the scale two PDs",
        "whose unrounded points are more than one point apart always get different points.",
        "",
        "| Segment | Scale | Base score | Base odds (good:bad) | PDO | Factor | Offset |",
        "|---|---|---|---|---|---|---|",
    ]
    for segment, scale in SCALES.items():
        lines.append(
            f"| {SEGMENT_TITLES.get(segment, segment)} | {scale.low}–{scale.high} | {scale.base_score:g} | "
            f"{scale.base_odds:g}:1 (PD {100 / (1 + scale.base_odds):.2f} %) | "
            f"{scale.pdo:g} | {scale.factor:.4f} | {scale.offset:.4f} |"
        )
    segments = list(SCALES)
    lines += [
        "",
        "Points at a few PDs:",
        "",
        "| PD | " + " | ".join(SEGMENT_TITLES.get(s, s) for s in segments) + " |",
        "|---|" + "---|" * len(segments),
    ]
    for pd in EXAMPLE_PDS:
        lines.append(f"| {_pd(pd)} | " + " | ".join(str(SCALES[s].points(pd)) for s in segments) + " |")

    lines += [
        "",
        "## Bands",
        "",
        "Bands are PD ranges, the same for every segment.",
        "",
        "| Band | PD from | PD below | Closest Banque de France step |",
        "|---|---|---|---|",
    ]
    lower = 0.0
    for band, upper, step in BANDS:
        below = "—" if math.isclose(upper, 1.0) else _pd(upper)
        lines.append(f"| {band} | {_pd(lower)} | {below} | {step} |")
        lower = upper
    return "\n".join(lines) + "\n"
