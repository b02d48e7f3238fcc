"""What a draft policy version would change: past scores replayed under the current version and the draft.

Nothing is predicted again: each stored score's PD, the features it was computed from and the amount
requested go through ``policy_apply`` twice, once per version. Both sides are recomputed (rather than
reading the stored decision) so that the comparison is between two policies on the same inputs, even for
scores an older version produced.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Exists, OuterRef

from scoring.models import Decision, PolicyVersion, Score
from scoring.policy.apply import policy_apply

# How many of the segment's latest scored dossiers a preview replays, unless the risk manager asks otherwise.
PREVIEW_DEFAULT = 500
PREVIEW_MAX = 5000


def preview_size(asked: object = None) -> int:
    """The number of dossiers to replay: ``asked`` (a query parameter) if sensible, else the setting."""
    default = int(getattr(settings, "POLICY_PREVIEW_DOSSIERS", PREVIEW_DEFAULT))
    try:
        size = int(str(asked)) if asked not in (None, "") else default
    except ValueError:
        size = default
    return max(1, min(size, PREVIEW_MAX))


@dataclass(frozen=True)
class MixRow:
    decision: str
    label: str
    current: int
    draft: int
    current_pct: float
    draft_pct: float


@dataclass
class PolicyPreview:
    dossiers: int = 0
    changed: int = 0
    rows: list[MixRow] = field(default_factory=list)
    # The moves, largest first: {"current": label, "draft": label, "dossiers": n}.
    moves: list[dict[str, object]] = field(default_factory=list)

    @property
    def changed_pct(self) -> float:
        return 100 * self.changed / self.dossiers if self.dossiers else 0.0


def latest_scores(segment: str, size: int):
    """The latest score of each of the segment's ``size`` most recently scored dossiers, newest first."""
    newer = Score.objects.filter(dossier=OuterRef("dossier"), version__gt=OuterRef("version"))
    return (
        Score.objects.filter(dossier__segment=segment)
        .exclude(Exists(newer))
        .order_by("-created_at", "-pk")
        .select_related("snapshot", "dossier")
        .only(
            "probability_of_default",
            "created_at",
            "snapshot__features",
            "dossier__requested_amount",
            "dossier__naf_code",
        )[:size]
    )


def policy_preview(*, current: PolicyVersion | None, draft: PolicyVersion, size: int) -> PolicyPreview:
    """The decision mix of the segment's last ``size`` scored dossiers under ``current`` and ``draft``."""
    before: Counter[str] = Counter()
    after: Counter[str] = Counter()
    moves: Counter[tuple[str, str]] = Counter()
    total = 0
    for score in latest_scores(draft.segment, size):
        inputs = {
            "pd": score.probability_of_default,
            "features": score.snapshot.features,
            "requested_amount": float(score.dossier.requested_amount),
            "naf_code": score.dossier.naf_code,
        }
        new = policy_apply(draft, **inputs).decision
        old = policy_apply(current, **inputs).decision if current is not None else new
        before[old] += 1
        after[new] += 1
        if old != new:
            moves[(old, new)] += 1
        total += 1
    labels = {value: str(label) for value, label in Decision.choices}
    rows = [
        MixRow(
            decision=value,
            label=str(label),
            current=before[value],
            draft=after[value],
            current_pct=100 * before[value] / total if total else 0.0,
            draft_pct=100 * after[value] / total if total else 0.0,
        )
        for value, label in Decision.choices
    ]
    return PolicyPreview(
        dossiers=total,
        changed=sum(moves.values()),
        rows=rows,
        moves=[
            {"current": labels[old], "draft": labels[new], "dossiers": n}
            for (old, new), n in sorted(moves.items(), key=lambda item: (-item[1], item[0]))
        ],
    )
