"""/api/v1/monitoring: a partner watches companies it has scored (scope monitoring:manage), through HTTP."""

from __future__ import annotations

import json

import pytest

from alerts.models import WatchedCompany
from riskoffice.models import AuditEvent

from .conftest import ALL_SCOPES, make_partner_client, obtain_token, problem_of
from .test_monitoring import SCOPES, scored_dossier

pytestmark = pytest.mark.django_db


class Partner:
    """A partner's API client through Django's test client, with a real token."""

    def __init__(self, client, name: str, scopes: list[str] = SCOPES) -> None:
        self.client = client
        self.partner_client = make_partner_client(name, scopes)
        self.partner = self.partner_client.partner
        self.token = obtain_token(client, self.partner_client)

    def _auth(self) -> dict:
        return {"HTTP_AUTHORIZATION": f"Bearer {self.token}"}

    def watch(self, body):
        return self.client.post("/api/v1/monitoring", json.dumps(body), content_type="application/json", **self._auth())

    def list(self, query: str = ""):
        return self.client.get(f"/api/v1/monitoring{query}", **self._auth())

    def unwatch(self, siren: str):
        return self.client.delete(f"/api/v1/monitoring/{siren}", **self._auth())


@pytest.fixture
def lender(client):
    return Partner(client, "Watching Lender")


def test_a_partner_watches_a_company_it_scored_once(lender, champion):
    dossier = scored_dossier(0, champion, partner=lender.partner, decision="decline")
    siren = dossier.company.siren

    created = lender.watch({"company": {"siren": f"{siren[:3]} {siren[3:6]} {siren[6:]}"}})
    again = lender.watch({"company": {"siren": siren}})

    assert created.status_code == 201, created.content
    watch = WatchedCompany.objects.get()
    assert created.json() == {
        "company": {"siren": siren, "name": dossier.company.name},
        "watched_since": watch.created_at.isoformat(),
        "has_open_exposure": False,
    }
    assert again.status_code == 200 and again.json() == created.json()
    assert (watch.partner, watch.created_by) == (lender.partner, lender.partner_client.api_client)
    audit = AuditEvent.objects.get(action="watch.added")
    assert audit.actor_client == lender.partner_client.api_client and audit.after == {"siren": siren}


def test_a_company_the_partner_never_scored_is_refused_with_a_clear_message(client, lender, champion):
    theirs = scored_dossier(0, champion, partner=Partner(client, "Another Lender").partner)

    for siren in (theirs.company.siren, "552100554"):  # another partner's applicant; a company nobody scored
        response = lender.watch({"company": {"siren": siren}})
        assert response.status_code == 422
        body = problem_of(response)
        assert f"You have not scored SIREN {siren}" in json.dumps(body)
    assert not WatchedCompany.objects.exists()


def test_a_bad_siren_or_an_unknown_field_is_a_400(lender, champion):
    siren = scored_dossier(0, champion, partner=lender.partner).company.siren

    bad = lender.watch({"company": {"siren": "123456789"}})
    unknown = lender.watch({"company": {"siren": siren}, "note": "x"})
    unknown_inner = lender.watch({"company": {"siren": siren, "vat": "FR00123456789"}})

    assert bad.status_code == 400 and "siren" in json.dumps(problem_of(bad))
    assert unknown.status_code == 400 and "note" in json.dumps(problem_of(unknown))
    assert unknown_inner.status_code == 400
    assert lender.unwatch("12345").status_code == 400
    assert not WatchedCompany.objects.exists()


def test_the_list_shows_the_partners_own_watches_with_their_exposure_a_page_at_a_time(client, lender, champion):
    exposed = scored_dossier(0, champion, partner=lender.partner, decision="accept")
    declined = scored_dossier(1, champion, partner=lender.partner, decision="decline")
    other = Partner(client, "Other Watcher")
    scored_dossier(2, champion, partner=other.partner)
    for dossier in (exposed, declined):
        assert lender.watch({"company": {"siren": dossier.company.siren}}).status_code == 201
    assert other.watch({"company": {"siren": scored_dossier(3, champion, partner=other.partner).company.siren}})

    page = lender.list("?page_size=1")
    assert page.status_code == 200
    first = page.json()
    assert [r["company"]["siren"] for r in first["results"]] == [declined.company.siren]  # newest first
    assert first["results"][0]["has_open_exposure"] is False and first["next"]
    second = lender.client.get(first["next"], HTTP_AUTHORIZATION=f"Bearer {lender.token}").json()
    assert [(r["company"]["siren"], r["has_open_exposure"]) for r in second["results"]] == [
        (exposed.company.siren, True)
    ]
    assert lender.list("?sort=siren").status_code == 400


def test_unwatching_is_a_204_then_a_404(lender, champion):
    siren = scored_dossier(0, champion, partner=lender.partner).company.siren
    lender.watch({"company": {"siren": siren}})

    assert lender.unwatch(siren).status_code == 204
    missing = lender.unwatch(siren)

    assert missing.status_code == 404 and siren in problem_of(missing)["detail"]
    assert not WatchedCompany.objects.exists()
    assert AuditEvent.objects.get(action="watch.removed").before == {"siren": siren}


def test_the_watch_list_needs_the_monitoring_scope(client, champion):
    without = Partner(client, "Scoreless Lender", scopes=[s for s in ALL_SCOPES if s != "monitoring:manage"])
    siren = scored_dossier(0, champion, partner=without.partner).company.siren

    assert without.list().status_code == 403
    assert without.watch({"company": {"siren": siren}}).status_code == 403
    assert without.unwatch(siren).status_code == 403
