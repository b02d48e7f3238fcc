"""Retention per data category: each period the register sets, applied to old rows only, counted, audited."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal
from importlib import import_module

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from alerts.models import NegativeEvent, WebhookDelivery, WebhookEndpoint
from dossiers.models import Company, Dossier, Outcome
from riskoffice.models import AuditEvent, IdempotencyKey
from riskoffice.register.models import DataCategory
from riskoffice.register.tasks import apply_retention
from scoring.models import SourceCache

pytestmark = pytest.mark.django_db

# The categories whose handlers live in this app (the others call the access log, erasure and bulk files).
LOCAL = ["bank_tokens", "webhook_deliveries", "idempotency_keys", "source_cache", "negative_events"]


@pytest.fixture(autouse=True)
def seeded_register(reference_data) -> None:
    import_module("riskoffice.register.migrations.0002_seed_register").seed(apps, None)


def days_ago(days: int):
    return timezone.now() - timedelta(days=days)


def years_ago(years: float):
    return timezone.localdate() - timedelta(days=round(years * 365.25))


def a_dossier(*, age_days: int, decision: str = "accept", tokens: str = '["tok_live_1"]', siren: str = "552100554"):
    company, _ = Company.objects.get_or_create(siren=siren)
    dossier = Dossier.objects.create(
        company=company,
        segment="b2b",
        requested_amount=Decimal("10000"),
        bank_tokens_json=tokens,
        status="scored",
        decision=decision,
        applicant_name="Boulangerie Martin",
    )
    Dossier.objects.filter(pk=dossier.pk).update(created_at=days_ago(age_days))
    return Dossier.objects.get(pk=dossier.pk)


@pytest.fixture
def old_and_recent(marketplace):
    """For each local category, one row past its period and one within it."""
    rows = {"old_dossier": a_dossier(age_days=45), "recent_dossier": a_dossier(age_days=5)}
    endpoint = WebhookEndpoint.objects.create(
        partner=marketplace.partner, url="https://hooks.example/riskoffice", secret="whsec_dGVzdA=="
    )
    for name, age, status in (
        ("old_delivered", 120, "delivered"),
        ("old_failed", 100, "failed"),
        ("old_pending", 120, "pending"),
        ("old_digested", 120, "digested"),
        ("old_held", 120, "held"),
        ("recent_delivered", 10, "delivered"),
    ):
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint,
            message_id=WebhookDelivery.new_message_id(),
            event_type="score.completed",
            payload={},
            status=status,
        )
        WebhookDelivery.objects.filter(pk=delivery.pk).update(created_at=days_ago(age))
        rows[name] = delivery
    for name, created, expires in (("old_key", 3, 2), ("recent_key", 0, -1)):
        key = IdempotencyKey.objects.create(
            client=marketplace.api_client, key=name, fingerprint="f" * 64, expires_at=days_ago(expires)
        )
        IdempotencyKey.objects.filter(pk=key.pk).update(created_at=days_ago(created))
        rows[name] = key
    rows["old_cache"] = SourceCache.objects.create(
        source="registry", key="552100554", payload={}, fetched_at=days_ago(3), expires_at=days_ago(2)
    )
    rows["recent_cache"] = SourceCache.objects.create(
        source="registry", key="732829320", payload={}, fetched_at=timezone.now(), expires_at=days_ago(-1)
    )
    company = Company.objects.get(siren="552100554")
    rows["old_event"] = NegativeEvent.objects.create(
        company=company, kind="payment_delay", occurred_on=timezone.localdate() - timedelta(days=1200), source="analyst"
    )
    rows["recent_event"] = NegativeEvent.objects.create(
        company=company, kind="payment_delay", occurred_on=timezone.localdate() - timedelta(days=30), source="analyst"
    )
    return rows


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("apply_retention", *args, stdout=out)
    return out.getvalue()


def local(*args: str) -> str:
    return run(*args, *(arg for code in LOCAL for arg in ("--category", code)))


def exists(row) -> bool:
    return type(row).objects.filter(pk=row.pk).exists()


def test_a_dry_run_reports_each_category_and_changes_nothing(old_and_recent):
    audit_rows = AuditEvent.objects.count()

    output = local("--dry-run")

    assert "Dry run: nothing is changed." in output
    assert "bank_tokens: cutoff" in output and "(30 days), action delete, eligible 1" in output
    assert "webhook_deliveries: cutoff" in output and "(90 days), action delete, eligible 3" in output
    assert "idempotency_keys: cutoff" in output
    assert "applied" not in output
    assert all(exists(row) for row in old_and_recent.values())
    assert old_and_recent["old_dossier"].bank_tokens == ["tok_live_1"]
    assert AuditEvent.objects.count() == audit_rows


def test_a_run_applies_each_period_to_old_rows_only(old_and_recent):
    output = local()

    rows = old_and_recent
    assert Dossier.objects.get(pk=rows["old_dossier"].pk).bank_tokens == []
    assert Dossier.objects.get(pk=rows["recent_dossier"].pk).bank_tokens == ["tok_live_1"]
    assert not exists(rows["old_delivered"]) and not exists(rows["old_failed"]) and not exists(rows["old_digested"])
    assert exists(rows["old_pending"]) and exists(rows["old_held"])  # still to be sent: they finish first
    assert exists(rows["recent_delivered"])
    assert not exists(rows["old_key"]) and exists(rows["recent_key"])
    assert not exists(rows["old_cache"]) and exists(rows["recent_cache"])
    assert not exists(rows["old_event"]) and exists(rows["recent_event"])
    assert "webhook_deliveries: cutoff" in output and "eligible 3, applied 3" in output


def test_each_real_run_writes_one_audit_row_per_category_with_its_counts(old_and_recent):
    local()

    audits = {
        DataCategory.objects.get(pk=event.object_id).code: event
        for event in AuditEvent.objects.filter(action="retention.applied")
    }
    assert set(audits) == set(LOCAL)
    deliveries = audits["webhook_deliveries"]
    assert deliveries.actor_system == "retention"
    assert deliveries.after["eligible"] == 3 and deliveries.after["applied"] == 3
    assert deliveries.after["action"] == "delete" and deliveries.after["retention_days"] == 90


def test_a_second_run_finds_nothing_left(old_and_recent):
    local()

    output = local()

    assert "eligible 1" not in output and "eligible 2" not in output and "eligible 3" not in output


def test_a_shorter_period_set_by_an_admin_reaches_more_rows(old_and_recent):
    DataCategory.objects.filter(code="webhook_deliveries").update(retention_days=5)

    local()

    assert not exists(old_and_recent["recent_delivered"])


def test_an_inactive_category_is_left_alone(old_and_recent):
    DataCategory.objects.filter(code="webhook_deliveries").update(is_active=False)

    apply_retention()

    assert exists(old_and_recent["old_delivered"])
    assert not AuditEvent.objects.filter(
        action="retention.applied", object_id=str(DataCategory.objects.get(code="webhook_deliveries").pk)
    ).exists()


def test_an_unknown_category_is_a_clear_error():
    with pytest.raises(CommandError, match="No active data category with the code"):
        run("--category", "nope")


def test_refused_applications_past_six_months_are_anonymised_and_recent_ones_kept(db):
    old = a_dossier(age_days=200, decision="refuse", siren="552100554")
    recent = a_dossier(age_days=20, decision="refuse", siren="732829320")

    output = run("--category", "refused_applications")

    old.refresh_from_db()
    recent.refresh_from_db()
    assert old.anonymised_at is not None and old.applicant_name == "" and old.bank_tokens == []
    assert recent.anonymised_at is None and recent.applicant_name == "Boulangerie Martin"
    assert "refused_applications: cutoff" in output and "eligible 1, applied 1" in output
    assert AuditEvent.objects.filter(action="dossier.anonymised", object_id=str(old.pk)).exists()


def test_credit_files_are_anonymised_five_years_after_the_credit_closed(db):
    closed = a_dossier(age_days=2600, decision="accept", siren="552100554")
    Outcome.objects.create(dossier=closed, status="repaid", occurred_on=years_ago(5.2))
    recovering = a_dossier(age_days=2600, decision="accept", siren="732829320")
    Outcome.objects.create(dossier=recovering, status="defaulted", occurred_on=years_ago(5.2))
    recently_closed = a_dossier(age_days=2600, decision="guarantee", siren="552100554")
    Outcome.objects.create(dossier=recently_closed, status="repaid", occurred_on=years_ago(1.1))

    run("--category", "credit_files")

    assert Dossier.objects.get(pk=closed.pk).anonymised_at is not None
    assert Dossier.objects.get(pk=recovering.pk).anonymised_at is None
    assert Dossier.objects.get(pk=recently_closed.pk).anonymised_at is None


def test_the_whole_register_applies_every_active_category(old_and_recent):
    output = run()

    for category in DataCategory.objects.filter(is_active=True):
        assert f"{category.code}: cutoff" in output
    assert "ERROR" not in output


def test_the_beat_runs_the_retention_task_daily():
    entry = next(e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"].endswith("apply_retention"))
    assert entry["task"] == "riskoffice.register.tasks.apply_retention"
    assert entry["schedule"] == timedelta(hours=24)
    assert apply_retention.name == "riskoffice.register.tasks.apply_retention"


def test_the_task_applies_the_register(old_and_recent):
    apply_retention()

    assert not exists(old_and_recent["old_delivered"])
    assert AuditEvent.objects.filter(action="retention.applied", actor_system="retention").exists()
