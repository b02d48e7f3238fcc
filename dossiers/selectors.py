"""Dossier reads, scoped: every lookup a view or endpoint makes starts from one of these.

Turn an id into a dossier with ``riskoffice.scoping.get_or_404(dossiers_for_…(who), pk)``.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Prefetch, QuerySet

from riskoffice.models import ApiClient
from riskoffice.roles import CAN_READ_DOSSIERS, has_any_role
from scoring.models import Score

from .models import Dossier


def _scores_with_versions() -> QuerySet[Score]:
    """Scores with the model and policy versions they name, without the model's booster bytes.

    A booster is 100 kB to a few MB: joined into every score row, a page of 50 dossiers read
    megabytes and each poll of GET /api/v1/scores/{id} one booster more, to show a version label.
    """
    return Score.objects.select_related("model_version", "policy_version").defer("model_version__booster_ubj")


def _with_latest_score(queryset: QuerySet[Dossier]) -> QuerySet[Dossier]:
    """Everything the score's representation shows, in two queries whatever the number of dossiers.

    The outcome is joined (a left join on its unique dossier id): GET /api/v1/scores/{id}, which
    partners poll, would otherwise spend a query of its own on it.
    """
    scores = _scores_with_versions().order_by("-created_at")
    return queryset.select_related("company", "individual", "partner", "outcome").prefetch_related(
        Prefetch("scores", queryset=scores, to_attr="scores_newest_first")
    )


def dossiers_for_user(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Dossier]:
    """Back-office staff with a role see every dossier; anyone else sees none."""
    if not has_any_role(user, CAN_READ_DOSSIERS):
        return Dossier.objects.none()
    return _with_latest_score(Dossier.objects.all())


def dossiers_for_client(client: ApiClient) -> QuerySet[Dossier]:
    """A partner's API client sees its partner's dossiers only."""
    return _with_latest_score(Dossier.objects.filter(partner_id=client.partner_id))


def latest_score(dossier: Dossier) -> Score | None:
    prefetched = getattr(dossier, "scores_newest_first", None)
    if prefetched is not None:
        return prefetched[0] if prefetched else None
    return _scores_with_versions().filter(dossier=dossier).order_by("-created_at").first()
