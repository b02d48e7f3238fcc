"""A company's recommended limit, lowered by analysts (audited), and the negative events they record on its page."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from alerts import notify
from alerts.models import Alert, NegativeEvent
from dossiers.limits import LIMIT_LOWERED
from dossiers.models import Company, Dossier
from riskoffice.models import AuditEvent
from tests.conftest import login

pytestmark = pytest.mark.django_db

LIMIT_URL = "/alerts/companies/552100554/limit/"
EVENT_URL = "/alerts/companies/552100554/events/"


@pytest.fixture
def acme(db) -> Company:
    return Company.objects.create(siren="552100554", name="ACME SA", recommended_limit=Decimal("50000"))


def drop_alert(company: Company, key: str = "1") -> Alert:
    return Alert.objects.create(
        kind=Alert.Kind.SCORE_DROPPED,
        severity=Alert.Severity.CRITICAL,
        dedup_key=f"cscore:{key}",
        company=company,
        previous_score=712,
        score=640,
        previous_band="B",
        band="D",
    )


def errors_of(response) -> str:
    return " ".join(re.findall(r'role="alert"[^>]*>(.*?)</div>', response.content.decode(), re.S))


# --- lowering the limit ------------------------------------------------------------------------------------------


def test_an_analyst_lowers_the_limit_from_an_alert_with_a_reason_audited_and_the_alert_acknowledged(
    client, analyst, acme
):
    alert = drop_alert(acme)
    login(client, analyst)
    form = client.get(f"{LIMIT_URL}?alert={alert.pk}&next=/alerts/")
    assert form.status_code == 200
    assert "score 712 → 640" in form.content.decode()

    response = client.post(
        LIMIT_URL, {"limit": "20 000", "reason": "Score fell to band D", "alert": alert.pk, "next": "/alerts/"}
    )

    assert response.status_code == 302 and response["Location"] == "/alerts/"
    acme.refresh_from_db()
    assert acme.recommended_limit == Decimal("20000.00")
    audit = AuditEvent.objects.get(action=LIMIT_LOWERED)
    assert audit.actor_user == analyst and audit.object_id == str(acme.pk)
    assert audit.before == {"recommended_limit": "50000.00"}
    assert audit.after == {"recommended_limit": "20000.00", "reason": "Score fell to band D", "alert": alert.pk}
    alert.refresh_from_db()
    assert alert.acknowledged_by == analyst
    assert AuditEvent.objects.filter(action="alert.acknowledged", object_id=str(alert.pk)).count() == 1


def test_lowering_from_an_alert_someone_acknowledged_meanwhile_still_lowers_the_limit(client, analyst, senior, acme):
    alert = drop_alert(acme)
    Alert.objects.filter(pk=alert.pk).update(acknowledged_at=timezone.now(), acknowledged_by=senior)
    login(client, analyst)

    response = client.post(LIMIT_URL, {"limit": "10000", "reason": "Insolvency", "alert": alert.pk})

    assert response.status_code == 302
    acme.refresh_from_db()
    assert acme.recommended_limit == Decimal("10000")
    assert Alert.objects.get(pk=alert.pk).acknowledged_by == senior


def test_a_company_without_a_limit_takes_any_amount_as_its_first_limit(client, senior, acme):
    Company.objects.filter(pk=acme.pk).update(recommended_limit=None)
    login(client, senior)

    response = client.post(LIMIT_URL, {"limit": "1000000", "reason": "First ceiling after a payment delay"})

    assert response.status_code == 302 and response["Location"] == "/dossiers/companies/552100554/"
    acme.refresh_from_db()
    assert acme.recommended_limit == Decimal("1000000")
    assert AuditEvent.objects.get(action=LIMIT_LOWERED).before == {"recommended_limit": None}


def test_zero_recommends_no_further_credit(client, analyst, acme):
    login(client, analyst)

    assert client.post(LIMIT_URL, {"limit": "0", "reason": "Liquidation"}).status_code == 302
    acme.refresh_from_db()
    assert acme.recommended_limit == Decimal("0")


@pytest.mark.parametrize(
    ("limit", "reason", "message"),
    [
        ("50000", "same", "The new limit must be lower than the current one"),
        ("60000", "higher", "The new limit must be lower than the current one"),
        ("-5", "negative", "Ensure this value is greater than or equal to 0."),
        ("abc", "garbage", "Enter a number."),
        ("1e400", "huge", "Ensure that there are no more than"),
        ("12.345", "three decimals", "Ensure that there are no more than 2 decimal places."),
        ("1000", "", "This field is required."),
        ("1000", "   ", "This field is required."),
        ("", "no amount", "This field is required."),
    ],
)
def test_a_bad_limit_or_no_reason_is_a_form_error_and_changes_nothing(client, analyst, acme, limit, reason, message):
    login(client, analyst)

    response = client.post(LIMIT_URL, {"limit": limit, "reason": reason})

    assert response.status_code == 400
    assert message in errors_of(response)
    acme.refresh_from_db()
    assert acme.recommended_limit == Decimal("50000")
    assert not AuditEvent.objects.filter(action=LIMIT_LOWERED).exists()


def test_an_alert_about_another_company_or_unknown_is_refused(client, analyst, acme):
    other = Company.objects.create(siren="732829320", name="Globex")
    alert = drop_alert(other)
    login(client, analyst)

    for given in (alert.pk, 999999):
        response = client.post(LIMIT_URL, {"limit": "100", "reason": "x", "alert": given})
        assert response.status_code == 400
        assert "This alert is not about this company." in response.content.decode()
    assert Company.objects.get(pk=acme.pk).recommended_limit == Decimal("50000")
    assert Alert.objects.get(pk=alert.pk).acknowledged_at is None


def test_a_next_address_off_the_site_is_not_followed(client, analyst, acme):
    login(client, analyst)

    response = client.post(LIMIT_URL, {"limit": "100", "reason": "x", "next": "https://evil.example/"})

    assert response["Location"] == "/dossiers/companies/552100554/"


def test_only_analysts_lower_a_limit(client, auditor, admin_user, acme):
    for user in (auditor, admin_user):
        login(client, user)
        assert client.get(LIMIT_URL).status_code == 403
        assert client.post(LIMIT_URL, {"limit": "1", "reason": "x"}).status_code == 403
        client.post("/logout/")
    assert Company.objects.get(pk=acme.pk).recommended_limit == Decimal("50000")


def test_an_unknown_siren_is_a_404(client, analyst):
    login(client, analyst)

    assert client.get("/alerts/companies/999999999/limit/").status_code == 404
    assert client.get("/alerts/companies/abc/limit/").status_code == 404
    assert client.post("/alerts/companies/abc/events/", {}).status_code == 404


# --- the company page ------------------------------------------------------------------------------------------


def test_the_company_page_shows_the_limit_its_last_change_and_a_link_to_the_alerts(client, analyst, acme):
    drop_alert(acme)
    login(client, analyst)
    client.post(LIMIT_URL, {"limit": "30000", "reason": "Band D since the re-score"})

    html = client.get("/dossiers/companies/552100554/").content.decode()

    assert 'data-testid="recommended-limit">€30,000<' in html
    assert f"lowered on {timezone.localdate():%Y-%m-%d} by alice.analyst" in html
    assert "Band D since the re-score" in html  # the history
    assert "/alerts/?company=552100554&amp;show=all" in html
    assert "This company's alerts" in html


def test_an_auditor_sees_the_limit_but_neither_the_event_form_nor_the_lower_link(client, auditor, acme):
    login(client, auditor)

    html = client.get("/dossiers/companies/552100554/").content.decode()

    assert 'data-testid="recommended-limit"' in html
    assert 'data-testid="event-form"' not in html
    assert LIMIT_URL not in html


# --- recording a negative event -------------------------------------------------------------------------------------


@pytest.fixture
def exposed(committed_dossier) -> Company:
    """ACME with open exposure: a partner holds a granted dossier on it, so an event raises an alert."""
    Dossier.objects.filter(pk=committed_dossier.pk).update(decision="accept")
    return committed_dossier.company


def test_an_analyst_records_an_insolvency_on_the_company_page_and_the_alert_appears(client, analyst, exposed):
    login(client, analyst)
    page = client.get("/dossiers/companies/552100554/").content.decode()
    assert 'data-testid="event-form"' in page and f'action="{EVENT_URL}"' in page

    response = client.post(
        EVENT_URL, {"kind": "insolvency_proceeding", "occurred_on": "2026-11-02", "note": "Jugement d'ouverture"}
    )

    assert response.status_code == 302 and response["Location"] == "/dossiers/companies/552100554/"
    event = NegativeEvent.objects.get(company=exposed)
    assert (event.kind, event.occurred_on, event.source, event.recorded_by) == (
        "insolvency_proceeding",
        date(2026, 11, 2),
        "analyst",
        analyst,
    )
    alert = Alert.objects.get(negative_event=event)
    inbox = client.get("/alerts/").content.decode()
    assert f'data-alert="{alert.pk}"' in inbox
    assert "Insolvency proceeding on 2026-11-02, reported by an analyst" in inbox

    # The e-mail task, as a worker runs it once the event's transaction committed: the analyst is told.
    analyst.email = "alice@example.test"
    analyst.save(update_fields=["email"])
    notify.email_alerts([alert.pk])
    (message,) = mail.outbox
    assert message.to == ["alice@example.test"] and "SIREN 552100554" in message.subject


def test_a_payment_delay_with_its_amount_and_days_late_is_recorded(client, senior, exposed):
    login(client, senior)

    client.post(
        EVENT_URL, {"kind": "payment_delay", "occurred_on": "2026-10-01", "amount": "12 500,50", "days_late": "45"}
    )

    event = NegativeEvent.objects.get(company=exposed)
    assert (event.amount, event.days_late) == (Decimal("12500.50"), 45)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"kind": "score_drop", "occurred_on": "2026-11-02"}, "kind", "Select a valid choice."),
        ({"kind": "insolvency_proceeding", "occurred_on": "2026-13-45"}, "occurred_on", "Enter a valid date."),
        ({"kind": "insolvency_proceeding"}, "occurred_on", "This field is required."),
        ({"kind": "debt_collection", "occurred_on": "2026-11-02", "amount": "-3"}, "amount", "greater than or equal"),
        ({"kind": "sepa_incident", "occurred_on": "2026-11-02", "days_late": "4"}, "days_late", "Only a payment"),
        ({"kind": "payment_delay", "occurred_on": "2026-11-02", "reason_code": "AM04"}, "reason_code", "Only a SEPA"),
        ({"kind": "sepa_incident", "occurred_on": "2026-11-02", "reason_code": "AM0"}, "reason_code", "four letters"),
        ({"kind": "payment_delay", "occurred_on": "2026-11-02", "days_late": "x"}, "days_late", "whole number"),
    ],
)
def test_a_bad_event_is_a_form_error_never_a_traceback(client, analyst, acme, data, field, message):
    login(client, analyst)

    response = client.post(EVENT_URL, data)

    assert response.status_code == 400
    assert message in errors_of(response)
    assert f'data-testid="{field}-errors"' in response.content.decode()
    assert not NegativeEvent.objects.exists()


def test_an_event_dated_in_the_future_is_refused(client, analyst, acme):
    login(client, analyst)
    tomorrow = timezone.localdate() + timedelta(days=1)

    response = client.post(EVENT_URL, {"kind": "payment_delay", "occurred_on": tomorrow.isoformat()})

    assert response.status_code == 400 and "The event date cannot be in the future." in errors_of(response)


def test_only_analysts_record_events(client, auditor, acme):
    login(client, auditor)

    assert client.get(EVENT_URL).status_code == 403
    assert client.post(EVENT_URL, {"kind": "payment_delay", "occurred_on": "2026-11-02"}).status_code == 403
    assert not NegativeEvent.objects.exists()


def test_the_service_itself_refuses_anyone_but_an_analyst(auditor, admin_user, acme):
    from django.core.exceptions import PermissionDenied

    from dossiers.limits import company_limit_lower

    for user in (auditor, admin_user):
        with pytest.raises(PermissionDenied):
            company_limit_lower(company=acme, limit=Decimal("1"), reason="x", user=user)
    assert Company.objects.get(pk=acme.pk).recommended_limit == Decimal("50000")


def test_the_service_refuses_an_alert_about_another_company(analyst, acme):
    from django.core.exceptions import ValidationError

    from dossiers.limits import company_limit_lower

    alert = drop_alert(Company.objects.create(siren="732829320"))

    with pytest.raises(ValidationError) as refused:
        company_limit_lower(company=acme, limit=Decimal("1"), reason="x", user=analyst, alert=alert)

    assert refused.value.message_dict == {"alert": ["This alert is about another company."]}
    assert Company.objects.get(pk=acme.pk).recommended_limit == Decimal("50000")
