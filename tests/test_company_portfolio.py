"""A company's page (every dossier of a SIREN, its open exposure, scores, events, accounts), the exposure on the
dossier page, and the portfolio page (volumes, decision mix, rates, scores, defaults by band), over HTTP.

An unknown SIREN is a 404 (the company page is an object page: a SIREN with no company on file has nothing to
show), and so is a malformed one; the role check comes first, so an outsider gets 403 either way.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from alerts.models import NegativeEvent
from dossiers.models import Dossier, Override
from dossiers.services import dossier_create, dossier_score, outcome_record
from riskoffice.audit import Actor
from scoring.model.synthetic import siren_from_number
from scoring.models import CompanyScore, FinancialStatement, PortfolioRun, Score
from tests.conftest import _user, login

pytestmark = pytest.mark.django_db

SIREN = "552100554"
OTHER_SIREN = "732829320"
ROW = re.compile(r'<tr data-dossier="([0-9a-f-]{36})"')


def company_url(siren: str = SIREN) -> str:
    return f"/dossiers/companies/{siren}/"


def make(marketplace, *, siren: str = SIREN, amount: str, scored: bool = True, **changes) -> Dossier:
    """A dossier created and scored by the services, then given the decision, band or date the test needs."""
    dossier = dossier_create(
        partner=marketplace.partner,
        siren=siren,
        requested_amount=Decimal(amount),
        bank_tokens=["t"],
        actor=Actor(client=marketplace.api_client),
    )
    if scored:
        assert dossier_score(dossier_id=dossier.pk) is not None
    band = changes.pop("band", None)
    if changes:
        Dossier.objects.filter(pk=dossier.pk).update(**changes)
    if band:
        Score.objects.filter(dossier=dossier).update(band=band)
    dossier.refresh_from_db()
    return dossier


@pytest.fixture
def book(champion, marketplace, analyst) -> dict[str, Dossier]:
    """Several requests of one SIREN: granted and open, refused, repaid, pending, referred; one of another SIREN."""
    accepted = make(marketplace, amount="100000", decision="accept")
    guaranteed = make(marketplace, amount="50000", decision="guarantee")
    refused = make(marketplace, amount="70000", decision="refuse")
    repaid = make(marketplace, amount="30000", decision="accept")
    outcome_record(dossier=repaid, status="repaid", occurred_on=timezone.localdate(), actor=Actor(user=analyst))
    pending = make(marketplace, amount="10000", scored=False)
    referred = make(marketplace, amount="5000", decision="refer")
    elsewhere = make(marketplace, siren=OTHER_SIREN, amount="999000", decision="accept")
    return {
        "accepted": accepted,
        "guaranteed": guaranteed,
        "refused": refused,
        "repaid": repaid,
        "pending": pending,
        "referred": referred,
        "elsewhere": elsewhere,
    }


# --- who may come in ----------------------------------------------------------------------------------------

PAGES = [company_url(), "/dossiers/portfolio/"]


@pytest.mark.parametrize("url", PAGES)
def test_an_anonymous_visitor_is_sent_to_log_in(client, book, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.parametrize("url", [*PAGES, company_url("000000000"), company_url("not-a-siren")])
def test_a_user_without_a_role_is_forbidden_before_any_lookup(client, book, outsider, url):
    login(client, outsider)
    response = client.get(url)
    assert response.status_code == 403
    body = response.content.decode()
    assert not ROW.search(body) and "exposure" not in body


@pytest.mark.parametrize("role", ["analyst", "senior_analyst", "auditor", "admin"])
@pytest.mark.parametrize("url", PAGES)
def test_every_back_office_role_reads_the_company_and_portfolio_pages(client, book, role, url):
    login(client, _user(f"someone.{role}", role))
    response = client.get(url)
    assert response.status_code == 200


@pytest.mark.parametrize("url", PAGES)
def test_the_pages_only_read(client, book, analyst, url):
    login(client, analyst)
    assert client.post(url).status_code == 405


@pytest.mark.parametrize("siren", ["000000000", "12345", "not-a-siren", "55210055%"])
def test_an_unknown_or_malformed_siren_is_a_404(client, analyst, book, siren):
    login(client, analyst)
    assert client.get(company_url(siren)).status_code == 404


# --- the company page -----------------------------------------------------------------------------------------


def test_the_company_page_lists_every_dossier_of_the_siren_and_no_other(marketplace, client, analyst, book):
    history = make(marketplace, amount="12000", origin=Dossier.Origin.HISTORY)
    login(client, analyst)
    body = client.get(company_url()).content.decode()
    listed = set(ROW.findall(body))
    mine = {str(d.pk) for name, d in book.items() if name != "elsewhere"} | {str(history.pk)}
    assert listed == mine
    assert "historical book" in body


def test_the_open_exposure_adds_up_granted_requests_without_an_outcome(client, analyst, book):
    login(client, analyst)
    body = client.get(company_url()).content.decode()
    # Accepted 100,000 and guaranteed 50,000; not the refused, the repaid, the pending, the referred, nor another SIREN.
    assert re.search(r'data-testid="exposure-amount">€150,000<', body), body[:3000]
    assert 'data-testid="exposure-count">over 2 open requests<' in body


def test_an_override_in_force_that_grants_credit_opens_exposure_and_an_outcome_closes_it(client, analyst, book):
    """The decision in force counts (an override awaiting four eyes has not changed it yet: tests/test_four_eyes.py)."""
    Dossier.objects.filter(pk=book["refused"].pk).update(decision="accept", decision_overridden=True)
    login(client, analyst)
    assert 'data-testid="exposure-amount">€220,000<' in client.get(company_url()).content.decode()
    outcome_record(
        dossier=book["accepted"], status="defaulted", occurred_on=timezone.localdate(), actor=Actor(user=analyst)
    )
    assert 'data-testid="exposure-amount">€120,000<' in client.get(company_url()).content.decode()


def test_the_dossier_page_shows_the_exposure_on_its_siren_and_links_the_company(client, analyst, book):
    login(client, analyst)
    body = client.get(f"/dossiers/{book['refused'].pk}/").content.decode()
    exposure = body.split('data-testid="exposure"')[1].split("</section>")[0]
    assert "Open exposure on this SIREN:" in exposure and "€150,000" in exposure and "2 open requests" in exposure
    assert f'href="{company_url()}"' in exposure
    heading = re.search(r"<h1>(.*?)</h1>", body, re.S).group(1)
    assert f'href="{company_url()}"' in heading


def test_the_score_history_chart_has_a_point_per_score_version_and_per_portfolio_score(client, analyst, champion, book):
    company = book["accepted"].company
    run = PortfolioRun.objects.create(
        segment="b2b",
        model_version=champion,
        status=PortfolioRun.Status.DONE,
        chunk_size=100,
        move_threshold=20,
        finished_at=timezone.now(),
    )
    CompanyScore.objects.create(run=run, company=company, probability_of_default=0.02, score=640, band="C")
    login(client, analyst)
    body = client.get(company_url()).content.decode()
    chart = body.split('data-testid="score-chart"')[1].split("</svg>")[0]
    versions = Score.objects.filter(dossier__company=company).count()
    assert chart.count("<circle") == versions
    assert chart.count("<rect") == 1 and "640 (C)" in chart
    svg = body.split('data-testid="score-chart"')[0].rsplit("<svg", 1)[1]
    assert 'role="img"' in svg and 'aria-labelledby="score-chart-title score-chart-desc"' in svg
    assert '<title id="score-chart-title">' in chart and '<desc id="score-chart-desc">' in chart
    # Coordinates are written with a dot whatever the language of the page.
    french = client.get(company_url(), HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert not re.search(r'c[xy]="\d+,\d', french)
    table = body.split('data-testid="score-history-table"')[1].split("</table>")[0]
    assert table.count("<tr>") == versions + 1 + 1  # the header, each version, the portfolio score


def test_the_timeline_shows_requests_scores_overrides_outcomes_and_negative_events(client, analyst, senior, book):
    company = book["accepted"].company
    NegativeEvent.objects.create(
        company=company,
        kind=NegativeEvent.Kind.PAYMENT_DELAY,
        occurred_on=timezone.localdate() - timedelta(days=3),
        amount=Decimal("4200"),
        days_late=45,
        source="partner:1",
    )
    Override.objects.create(
        dossier=book["refused"],
        from_decision="refuse",
        to_decision="accept",
        reason="Collateral.",
        decided_by=senior,
        status=Override.Status.PENDING,
    )
    login(client, analyst)
    body = client.get(company_url()).content.decode()
    timeline = body.split('data-testid="timeline"')[1].split("</ol>")[0]
    kinds = re.findall(r'data-kind="([a-z]+)"', timeline)
    assert {"received", "scored", "override", "outcome", "negative"} <= set(kinds)
    assert "Payment delay" in timeline and "45 days late" in timeline and "€4,200" in timeline
    assert "Override awaiting approval: Refuse → Accept" in timeline
    assert "Outcome: Repaid" in timeline
    assert kinds.count("received") == 6


def test_the_statements_on_file_are_listed(client, analyst, book):
    FinancialStatement.objects.create(
        company=book["accepted"].company,
        fiscal_year_end=date(2024, 12, 31),
        source=FinancialStatement.Source.ANALYST,
        revenue=Decimal("420000"),
        net_income=Decimal("-38000"),
    )
    login(client, analyst)
    body = client.get(company_url()).content.decode()
    statements = body.split('data-testid="statements"')[1].split("</table>")[0]
    assert "2024-12-31" in statements and "€420,000" in statements and "-€38,000" in statements


def test_a_company_with_many_dossiers_shows_the_newest_and_says_so(client, analyst, book, monkeypatch):
    from dossiers.views import company as company_views

    monkeypatch.setattr(company_views, "DOSSIERS_SHOWN", 3)
    login(client, analyst)
    body = client.get(company_url()).content.decode()
    assert len(ROW.findall(body)) == 3
    assert "The newest 3 dossiers are shown." in body
    assert 'data-testid="exposure-amount">€150,000<' in body  # the exposure still counts them all


# --- the portfolio page ---------------------------------------------------------------------------------------


def _table(body: str, key: str) -> list[list[str]]:
    table = body.split(f'data-testid="table-{key}"')[1].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.S)
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r, re.S)]
        for r in rows
    ]


def _this_month(rows: list[list[str]]) -> list[str]:
    return rows[-1]


def test_the_portfolio_counts_this_months_requests_decisions_and_rates(marketplace, client, analyst, senior, book):
    history = make(marketplace, amount="1000", origin=Dossier.Origin.HISTORY)
    Dossier.objects.filter(pk=book["guaranteed"].pk).update(decision="refuse", decision_overridden=True)
    login(client, analyst)
    body = client.get("/dossiers/portfolio/").content.decode()
    headers = re.findall(r'<th scope="col"[^>]*>(.*?)</th>', body.split('data-testid="table-activity"')[1])
    row = dict(zip(headers, _this_month(_table(body, "activity")), strict=False))
    # Seven live requests this month (the historical file is not one of them).
    assert row["Received"] == "7"
    decided = Dossier.objects.exclude(origin="history").filter(decision__in=["accept", "guarantee", "refuse"])
    granted = decided.filter(decision__in=["accept", "guarantee"]).count()
    overridden = decided.filter(decision_overridden=True).count()
    assert row["Approval rate"] == f"{100 * granted / decided.count():.1f} %"
    assert row["Override rate"] == f"{100 * overridden / decided.count():.1f} %"
    assert row["In force: Refer to an analyst"] == "1"
    assert row["Failed"] == "0"
    assert history.pk  # made, and excluded above


def test_a_request_received_months_ago_counts_in_its_own_month(marketplace, client, analyst, book):
    make(marketplace, amount="1000", created_at=timezone.now() - timedelta(days=62))
    login(client, analyst)
    rows = _table(client.get("/dossiers/portfolio/").content.decode(), "activity")
    assert len(rows) == 12
    assert sum(int(r[1]) for r in rows) == 8 and rows[-1][1] == "7"


def test_the_score_distribution_counts_latest_scores_by_band_and_bucket(client, analyst, book):
    login(client, analyst)
    rows = _table(client.get("/dossiers/portfolio/").content.decode(), "scores")
    by_band = {r[0]: int(r[1]) for r in rows if len(r[0]) == 1}
    scored = Score.objects.filter(dossier__origin="api")
    for band in "ABCDE":
        assert by_band[band] == scored.filter(band=band).count()
    buckets = {r[0]: int(r[1]) for r in rows if "–" in r[0]}
    assert sum(buckets.values()) == scored.count()
    for score in scored:
        low = score.score // 50 * 50
        assert buckets[f"{low}–{low + 49}"] >= 1


def test_default_rate_by_band_against_predicted_pd_includes_the_historical_book(
    marketplace, client, analyst, book, champion
):
    # Band B: two outcomes known, one default; one of them from the historical book.
    b1 = make(marketplace, siren=siren_from_number(51_000_001), amount="1000", decision="accept", band="B")
    b2 = make(marketplace, siren=siren_from_number(51_000_002), amount="1000", decision="accept", band="B")
    today = timezone.localdate()
    outcome_record(dossier=b1, status="defaulted", occurred_on=today, actor=Actor(user=analyst))
    outcome_record(dossier=b2, status="repaid", occurred_on=today, actor=Actor(user=analyst))
    Dossier.objects.filter(pk=b2.pk).update(origin=Dossier.Origin.HISTORY)
    Score.objects.filter(dossier=book["repaid"]).update(band="A")
    # A historical file with no score, as seed_demo makes them: counted apart.
    unscored = make(marketplace, siren=siren_from_number(51_000_003), amount="1000", decision="accept", band="A")
    outcome_record(
        dossier=unscored,
        status="written_off",
        occurred_on=today,
        actor=Actor(user=analyst),
        amounts={"written_off_amount": Decimal("1000")},
    )
    Score.objects.filter(dossier=unscored).delete()
    Dossier.objects.filter(pk=unscored.pk).update(origin=Dossier.Origin.HISTORY)

    login(client, analyst)
    body = client.get("/dossiers/portfolio/").content.decode()
    rows = {r[0]: r[1:] for r in _table(body, "defaults")}
    pd_b = sum(Score.objects.filter(dossier__in=[b1, b2]).values_list("probability_of_default", flat=True)) / 2
    assert rows["B"][:4] == ["2", "1", "1", "50.0 %"]
    assert rows["B"][4] == f"{100 * pd_b:.1f} %"
    assert rows["A"][:4] == ["1", "0", "0", "0.0 %"]
    assert rows["No score (historical book)"][:4] == ["1", "1", "1", "100.0 %"]
    assert "the historical book included" in body


def test_the_charts_are_accessible_svg_with_a_table_beside_them(client, analyst, book):
    login(client, analyst)
    body = client.get("/dossiers/portfolio/").content.decode()
    for key in ("volumes", "recommendations", "decisions", "rates", "bands", "histogram"):
        svg = (
            body.split(f'data-testid="chart-{key}"')[0].rsplit("<svg", 1)[1]
            + body.split(f'data-testid="chart-{key}"')[1].split("</svg>")[0]
        )
        assert 'role="img"' in svg
        assert f'aria-labelledby="chart-{key}-title chart-{key}-desc"' in svg
        assert f'<title id="chart-{key}-title">' in svg and f'<desc id="chart-{key}-desc">' in svg
    for key in ("activity", "scores", "defaults"):
        assert f'data-testid="table-{key}"' in body
    assert "<script" not in re.split(r"<main[^>]*>", body)[1]
    french = client.get("/dossiers/portfolio/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert not re.search(r'(x|y|width|height)="\d+,\d', french)


def test_the_portfolio_narrows_to_a_segment_and_ignores_an_unknown_one(client, analyst, book):
    login(client, analyst)
    b2c = _table(client.get("/dossiers/portfolio/", {"segment": "b2c"}).content.decode(), "activity")
    assert sum(int(r[1]) for r in b2c) == 0
    unknown = client.get("/dossiers/portfolio/", {"segment": "zzz"})
    assert unknown.status_code == 200
    assert sum(int(r[1]) for r in _table(unknown.content.decode(), "activity")) == 7
