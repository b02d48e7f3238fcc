"""Scoring reads: the champion and the current policy of a segment, and the scoped lookups of the back-office.

Every lookup of a user's object goes through a ``*_for_user`` function here (or
``riskoffice.scoping.get_or_404`` over one), so no view reads an unscoped row.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from riskoffice.roles import ADMIN, AUDITOR, CAN_DECIDE, CAN_READ_DOSSIERS, SENIOR_ANALYST, has_any_role
from scoring.models import BulkScoringJob, DriftCheck, FinancialStatement, ModelVersion, PolicyVersion, RetrainingRun


def champion_for(segment: str) -> ModelVersion | None:
    """The segment's champion. Its booster bytes are deferred: engine.model_load reads them once per process."""
    return (
        ModelVersion.objects.filter(segment=segment, status=ModelVersion.Status.CHAMPION).defer("booster_ubj").first()
    )


def challenger_for(segment: str) -> ModelVersion | None:
    """The segment's challenger (shadow-scoring, awaiting a senior analyst's decision), booster deferred."""
    return (
        ModelVersion.objects.filter(segment=segment, status=ModelVersion.Status.CHALLENGER).defer("booster_ubj").first()
    )


def policy_current(segment: str) -> PolicyVersion | None:
    return PolicyVersion.objects.filter(segment=segment, is_current=True).first()


def policy_versions_for_user(user: AbstractBaseUser | AnonymousUser) -> QuerySet[PolicyVersion]:
    """Every version of every segment's policy for back-office staff, newest first within a segment; none for others."""
    if not has_any_role(user, CAN_READ_DOSSIERS):
        return PolicyVersion.objects.none()
    return PolicyVersion.objects.select_related("created_by").order_by("segment", "-version")


def bulk_jobs_for_user(user: AbstractBaseUser | AnonymousUser) -> QuerySet[BulkScoringJob]:
    """The jobs a user may see: their own; every job for senior analysts and auditors; none for others.

    The files and the booster are deferred: a list or a progress poll never loads megabytes of bytes.
    """
    jobs = BulkScoringJob.objects.select_related("model_version", "created_by").defer(
        "input_csv", "output_csv", "model_version__booster_ubj"
    )
    if has_any_role(user, {SENIOR_ANALYST, AUDITOR}):
        return jobs
    if has_any_role(user, CAN_DECIDE):
        return jobs.filter(created_by=user)
    return jobs.none()


def statements_for_user(user: AbstractBaseUser | AnonymousUser) -> QuerySet[FinancialStatement]:
    """Financial statements on file, latest fiscal year first, for back-office staff; none for others."""
    if not has_any_role(user, CAN_READ_DOSSIERS):
        return FinancialStatement.objects.none()
    return FinancialStatement.objects.select_related("supplied_by_user", "supplied_by_client__partner")


def _can_read_models(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Model governance is the risk managers' (senior analysts'), read by auditors and admins."""
    return has_any_role(user, {SENIOR_ANALYST, AUDITOR, ADMIN})


def model_versions_for_user(user: AbstractBaseUser | AnonymousUser) -> QuerySet[ModelVersion]:
    """Every model version of every segment, newest first within a segment, booster deferred; none for others."""
    if not _can_read_models(user):
        return ModelVersion.objects.none()
    return ModelVersion.objects.select_related("decided_by").defer("booster_ubj").order_by("segment", "-version")


def retraining_runs_for_user(user: AbstractBaseUser | AnonymousUser) -> QuerySet[RetrainingRun]:
    """Retraining runs, newest first, with who started them and the challenger they made (booster deferred)."""
    if not _can_read_models(user):
        return RetrainingRun.objects.none()
    return RetrainingRun.objects.select_related("started_by", "challenger").defer("challenger__booster_ubj")


def drift_checks_for_user(user: AbstractBaseUser | AnonymousUser) -> QuerySet[DriftCheck]:
    """Daily drift checks, latest day first, with the model each one measured (booster deferred)."""
    if not _can_read_models(user):
        return DriftCheck.objects.none()
    return DriftCheck.objects.select_related("model_version").defer("model_version__booster_ubj")
