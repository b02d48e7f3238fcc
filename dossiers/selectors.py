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


def _with_latest_score(queryset: QuerySet[Dossier]) -> QuerySet[Dossier]:
    scores = Score.objects.select_related("model_version", "policy_version").order_by("-created_at")
    return queryset.select_related("company", "individual", "partner").prefetch_related(
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
    return dossier.scores.select_related("model_version", "policy_version").order_by("-created_at").first()
