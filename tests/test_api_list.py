"""GET /api/v1/scores: a partner lists its own dossiers, newest first, filtered, a cursor page at a time."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dossiers.models import Dossier
from dossiers.services import dossier_score

from .conftest import make_partner_client, obtain_token, problem_of

SIREN = "552100554"
OTHER_SIREN = "732829320"


def company(siren: str = SIREN, amount: int = 25000) -> dict:
    return {"company": {"siren": siren}, "bank_data": ["tok_123"], "requested_amount": amount}


def individual(reference: str, amount: int = 1500) -> dict:
    return {"individual": {"reference": reference}, "requested_amount": amount}


def requested(api, body: dict, *, scored: bool = True) -> str:
    """A dossier asked for through the API, then scored by the real scoring service unless told not to."""
    response = api.post("/api/v1/scores", body)
    assert response.status_code == 202, response.content
    dossier_id = response.json()["id"]
    if scored:
        assert dossier_score(dossier_id=dossier_id) is not None
    return dossier_id


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


def path_of(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


@pytest.fixture
def book(api, champion, other_partner, client):
    """The marketplace's four dossiers (oldest first) and one of another lender on the same company."""
    first = requested(api, company())
    second = requested(api, individual("cust-0001"), scored=False)
    third = requested(api, company(OTHER_SIREN))
    fourth = requested(api, company(), scored=False)
    token = obtain_token(client, other_partner)
    client.post(
        "/api/v1/scores",
        json.dumps(company()),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    # Creation times an hour apart, so that date filters have something to tell apart.
    start = timezone.now() - timedelta(hours=10)
    for hours, dossier_id in enumerate([first, second, third, fourth]):
        Dossier.objects.filter(pk=dossier_id).update(created_at=start + timedelta(hours=hours))
    return [first, second, third, fourth]


# --- what a partner sees ---------------------------------------------------------------------------


def test_a_partner_lists_its_own_dossiers_newest_first_each_as_its_detail_shows_it(api, book):
    response = api.get("/api/v1/scores")

    assert ids(response) == list(reversed(book))  # the other lender's dossier is not there
    body = response.json()
    assert set(body) == {"results", "next", "previous"}
    assert body["next"] is None and body["previous"] is None
    for item in body["results"]:
        assert item == api.get(f"/api/v1/scores/{item['id']}").json()
    assert {item["status"] for item in body["results"]} == {"pending", "scored"}


def test_another_partner_sees_only_its_own(client, book, other_partner):
    token = obtain_token(client, other_partner)
    response = client.get("/api/v1/scores", HTTP_AUTHORIZATION=f"Bearer {token}")
    results = response.json()["results"]
    assert len(results) == 1 and results[0]["id"] not in book


def test_listing_needs_scores_read_and_creating_still_needs_scores_write(client, db):
    writer = make_partner_client("Write Only Broker", ["scores:write"])
    reader = make_partner_client("Read Only Insurer", ["scores:read"])
    writer_token, reader_token = obtain_token(client, writer), obtain_token(client, reader)

    refused = client.get("/api/v1/scores", HTTP_AUTHORIZATION=f"Bearer {writer_token}")
    assert refused.status_code == 403
    problem_of(refused)
    assert client.get("/api/v1/scores", HTTP_AUTHORIZATION=f"Bearer {reader_token}").status_code == 200
    not_created = client.post(
        "/api/v1/scores",
        json.dumps(company()),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {reader_token}",
    )
    assert not_created.status_code == 403
    assert not Dossier.objects.exists()


def test_without_a_token_the_list_is_a_401_problem(client, db):
    response = client.get("/api/v1/scores")
    assert response.status_code == 401
    problem_of(response)


def test_an_outcome_shows_in_the_listed_dossier(api, book):
    response = api.post(
        f"/api/v1/scores/{book[0]}/outcome", {"status": "repaid", "occurred_on": timezone.localdate().isoformat()}
    )
    assert response.status_code == 201, response.content
    listed = {item["id"]: item for item in api.get("/api/v1/scores").json()["results"]}
    assert listed[book[0]]["outcome"]["status"] == "repaid"
    assert listed[book[2]]["outcome"] is None


# --- filters --------------------------------------------------------------------------------------------


def test_filtering_by_siren_accepts_spaces(api, book):
    assert ids(api.get("/api/v1/scores", data={"siren": SIREN})) == [book[3], book[0]]
    assert ids(api.get("/api/v1/scores", data={"siren": "732 829 320"})) == [book[2]]


def test_filtering_by_an_individuals_reference(api, book):
    assert ids(api.get("/api/v1/scores", data={"reference": "cust-0001"})) == [book[1]]
    assert ids(api.get("/api/v1/scores", data={"reference": "cust-9999"})) == []


def test_filtering_by_status(api, book):
    assert ids(api.get("/api/v1/scores", data={"status": "pending"})) == [book[3], book[1]]
    assert ids(api.get("/api/v1/scores", data={"status": "scored"})) == [book[2], book[0]]
    assert ids(api.get("/api/v1/scores", data={"status": "failed"})) == []


def test_filtering_by_creation_instant_with_its_offset(api, book):
    second = Dossier.objects.get(pk=book[1]).created_at
    third = Dossier.objects.get(pk=book[2]).created_at
    after = api.get("/api/v1/scores", data={"created_after": second.isoformat()})  # inclusive
    assert ids(after) == [book[3], book[2], book[1]]
    between = api.get(
        "/api/v1/scores", data={"created_after": second.isoformat(), "created_before": third.isoformat()}
    )  # created_before is exclusive
    assert ids(between) == [book[1]]
    in_utc = second.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert ids(api.get("/api/v1/scores", data={"created_after": in_utc})) == [book[3], book[2], book[1]]


def test_filtering_by_creation_date(api, book):
    # The days the book was made on (Paris time), not the clock's: the book spans 10 hours back from now,
    # which crosses midnight when the tests run early in the morning.
    made = [timezone.localdate(Dossier.objects.get(pk=pk).created_at) for pk in book[1:]]
    today, tomorrow = min(made), max(made) + timedelta(days=1)
    Dossier.objects.filter(pk=book[0]).update(created_at=timezone.now() - timedelta(days=3))
    assert ids(api.get("/api/v1/scores", data={"created_before": today.isoformat()})) == [book[0]]
    assert book[0] not in ids(api.get("/api/v1/scores", data={"created_after": today.isoformat()}))
    assert ids(api.get("/api/v1/scores", data={"created_after": tomorrow.isoformat()})) == []


# --- cursor pages ----------------------------------------------------------------------------------------


def walk(api, first: str) -> tuple[list[str], list[dict]]:
    seen, pages, link = [], [], first
    while link:
        page = api.get(path_of(link) if link.startswith("http") else link).json()
        pages.append(page)
        seen += [item["id"] for item in page["results"]]
        link = page["next"]
    return seen, pages


def test_pages_follow_next_links_to_every_dossier_once_and_previous_links_back(api, book):
    seen, pages = walk(api, "/api/v1/scores?page_size=1&status=pending")
    assert seen == [book[3], book[1]] and len(pages) == 2

    seen, pages = walk(api, "/api/v1/scores?page_size=3")
    assert seen == list(reversed(book))
    assert [len(page["results"]) for page in pages] == [3, 1]
    assert pages[0]["previous"] is None and pages[-1]["next"] is None
    back = api.get(path_of(pages[1]["previous"])).json()
    assert [item["id"] for item in back["results"]] == list(reversed(book))[:3]


def test_dossiers_created_in_the_same_instant_are_each_listed_once(api, book):
    Dossier.objects.filter(pk__in=book).update(created_at=timezone.now() - timedelta(minutes=5))
    seen, pages = walk(api, "/api/v1/scores?page_size=1")
    assert sorted(seen) == sorted(book) and len(seen) == 4
    assert len(pages) == 4


def test_filters_carry_over_into_the_next_link(api, book):
    first = api.get("/api/v1/scores", data={"siren": SIREN, "page_size": 1}).json()
    assert "siren=552100554" in first["next"] and "page_size=1" in first["next"]
    second = api.get(path_of(first["next"])).json()
    assert [first["results"][0]["id"], second["results"][0]["id"]] == [book[3], book[0]]
    assert second["next"] is None


def test_page_size_defaults_to_fifty(api, champion):
    for number in range(52):
        requested(api, company(amount=1000 + number), scored=False)
    first = api.get("/api/v1/scores").json()
    assert len(first["results"]) == 50 and first["next"]
    assert len(api.get("/api/v1/scores?page_size=200").json()["results"]) == 52


def test_the_list_costs_the_same_queries_for_two_dossiers_or_ten(api, champion):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api.get("/api/v1/scores").status_code == 200
        return len(captured)

    for _ in range(2):
        requested(api, company())
    few = queries()
    for _ in range(8):
        requested(api, company(OTHER_SIREN))
    api.post(
        f"/api/v1/scores/{requested(api, company())}/outcome",
        {"status": "repaid", "occurred_on": str(timezone.localdate())},
    )
    assert queries() == few


# --- refused parameters -------------------------------------------------------------------------------------


def forged_cursor(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("page_size=0", "page_size"),
        ("page_size=201", "page_size"),
        ("page_size=ten", "page_size"),
        ("page_size=-1", "page_size"),
        ("page_size=1.5", "page_size"),
        ("cursor=not-a-cursor", "cursor"),
        (f"cursor={forged_cursor('p=not-a-date')}", "cursor"),
        (f"cursor={forged_cursor('r=x')}", "cursor"),
        ("siren=123", "siren"),
        ("siren=552100555", "siren"),
        ("reference=has%20space", "reference"),
        ("status=done", "status"),
        ("created_after=yesterday", "created_after"),
        ("created_after=2025-13-01", "created_after"),
        ("created_after=2025-01-01T10:00:00", "created_after"),  # no offset: which 10 o'clock?
        ("created_before=2025-01-01T10:00:00+01:00", "created_before"),  # an unencoded + reads as a space
        ("created_after=2025-02-01&created_before=2025-01-01", "created_before"),
        ("sort=created_at", "sort"),
        ("siren=552100554&siren=732829320", "siren"),
    ],
)
def test_a_bad_parameter_is_a_400_problem_naming_it(api, book, query, parameter):
    response = api.get(f"/api/v1/scores?{query}")
    assert response.status_code == 400, response.content
    body = problem_of(response)
    assert body["type"] == "urn:riskoffice:problem:validation-error"
    assert parameter in body["errors"], body


def test_an_encoded_offset_is_understood(api, book):
    at = datetime.fromisoformat("2000-01-01T10:00:00+01:00").isoformat()
    assert len(ids(api.get("/api/v1/scores", data={"created_after": at}))) == 4
