"""Dossier reads, scoped: every lookup a view makes goes through one of these."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db.models import Prefetch, QuerySet
from django.http import Http404

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


def get_or_404(queryset: QuerySet[Dossier], pk: Any) -> Dossier:
    """The dossier in ``queryset``, else 404: someone else's dossier and a malformed id look alike."""
    try:
        return queryset.get(pk=pk)
    except (Dossier.DoesNotExist, ValueError, TypeError, ValidationError):
        raise Http404("No such dossier.") from None


def latest_score(dossier: Dossier) -> Score | None:
    prefetched = getattr(dossier, "scores_newest_first", None)
    if prefetched is not None:
        return prefetched[0] if prefetched else None
    return dossier.scores.select_related("model_version", "policy_version").order_by("-created_at").first()
