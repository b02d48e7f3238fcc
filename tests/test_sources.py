"""The scoring engine's data sources, as the partners' live data meets them.

The HTTP connectors (company registry, BODACC, open banking) are exercised
against a real local HTTP server answering in the public APIs' formats
(/work/shared/SOURCES.md), errors and rate limits included. Nothing of ours is
mocked: the cache, statements and events live in the test database.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from alerts.models import NegativeEvent
from dossiers.models import Dossier
from dossiers.services import dossier_create, dossier_score
from riskoffice.audit import Actor
from riskoffice.models import AuditEvent
from scoring.models import FeatureSnapshot, FinancialStatement, SourceCache
from scoring.sources import gather_for_dossier
from scoring.sources.bodacc import bodacc_lookup
from scoring.sources.open_banking import open_banking_lookup
from scoring.sources.registry import registry_lookup

from .conftest import ALL_SCOPES, PASSWORD, PartnerClient, make_partner_client, obtain_token

pytestmark = pytest.mark.django_db

SIREN = "833310592"
OTHER_SIREN = "552100554"
REGISTRY = "/search"
BODACC = "/api/explore/v2.1/catalog/datasets/annonces-commerciales/records"
ACCOUNTS = "/v3/aggregation/accounts"
TRANSACTIONS = "/v3/aggregation/transactions"


# --- a local server speaking the public APIs' formats ------------------------------------------


@dataclass
class Answer:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


Route = Callable[[dict[str, Any]], Answer]


@dataclass
class FakeApis:
    """One server for the three services (their paths do not overlap); records every request it receives."""

    url: str = ""
    routes: dict[str, list[Answer | Route]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def answer(self, path: str, *answers: Answer | Route) -> None:
        """Answers given in turn; the last one repeats."""
        self.routes[path] = list(answers)

    def calls(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]

    def respond(self, request: dict[str, Any]) -> Answer:
        queue = self.routes.get(request["path"])
        if not queue:
            return Answer(404, {"erreur": "route inconnue"})
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        return answer(request) if callable(answer) else answer


@pytest.fixture
def apis(settings) -> Iterator[FakeApis]:
    apis = FakeApis()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            request = {
                "path": parts.path,
                "query": {k: v[0] for k, v in parse_qs(parts.query).items()},
                "headers": {k.lower(): v for k, v in self.headers.items()},
            }
            apis.requests.append(request)
            answer = apis.respond(request)
            time.sleep(answer.delay)
            payload = answer.body if isinstance(answer.body, (str, bytes)) else json.dumps(answer.body)
            data = payload.encode() if isinstance(payload, str) else payload
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request, client_address) -> None:
            pass  # a client that gave up (the timeout test) closes the socket under a sleeping handler

    server = Server(("127.0.0.1", 0), Handler)
    apis.url = f"http://127.0.0.1:{server.server_address[1]}"
    settings.COMPANY_REGISTRY_URL = apis.url
    settings.BODACC_URL = apis.url
    settings.OPEN_BANKING_URL = apis.url
    settings.OPEN_BANKING_CLIENT_ID = "client-id-test"
    settings.OPEN_BANKING_CLIENT_SECRET = "client-secret-test"
    settings.SOURCE_TIMEOUT_SECONDS = 2
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield apis
    server.shutdown()
    server.server_close()


# --- the APIs' documents ---------------------------------------------------------------------------


def registry_record(siren: str = SIREN, **overrides: Any) -> dict[str, Any]:
    record = {
        "siren": siren,
        "nom_complet": "dj batiment",
        "nom_raison_sociale": "DJ BATIMENT",
        "nature_juridique": "5710",
        "activite_principale": "43.22A",
        "section_activite_principale": "F",
        "categorie_entreprise": "PME",
        "date_creation": "2017-11-06",
        "date_fermeture": None,
        "etat_administratif": "A",
        "tranche_effectif_salarie": "12",
        "annee_tranche_effectif_salarie": "2022",
        "nombre_etablissements_ouverts": 1,
        "siege": {
            "siret": f"{siren}00015",
            "code_postal": "33000",
            "libelle_commune": "BORDEAUX",
            "departement": "33",
            "etat_administratif": "A",
        },
        "dirigeants": [
            {"nom": "DUPONT", "prenoms": "Jean", "qualite": "Président", "type_dirigeant": "personne physique"}
        ],
        "finances": {
            "2022": {"ca": 1_150_000, "resultat_net": 41_000},
            "2023": {"ca": 1_320_000, "resultat_net": 52_800},
        },
        "complements": {"est_entrepreneur_individuel": False, "est_association": False},
        "matching_etablissements": [],
    }
    record.update(overrides)
    return record


def registry_answer(*records: dict[str, Any]) -> Answer:
    return Answer(
        200,
        {
            "results": list(records),
            "total_results": len(records),
            "page": 1,
            "per_page": 1,
            "total_pages": 1 if records else 0,
        },
    )


def bodacc_notice(
    *,
    jugement: dict[str, Any],
    as_string: bool = True,
    registre: Any = None,
    published: str = "2024-03-15",
    typeavis: str = "annonce",
) -> dict[str, Any]:
    return {
        "id": f"A{published.replace('-', '')}{len(json.dumps(jugement)):04d}",
        "dateparution": published,
        "typeavis": typeavis,
        "familleavis": "collective",
        "familleavis_lib": "Procédures collectives",
        "tribunal": "TRIBUNAL DE COMMERCE DE BORDEAUX",
        "commercant": "DJ BATIMENT",
        "registre": registre if registre is not None else "833 310 592,833310592",
        "jugement": json.dumps(jugement, ensure_ascii=False) if as_string else jugement,
    }


def bodacc_answer(*records: dict[str, Any]) -> Answer:
    return Answer(200, {"total_count": len(records), "results": list(records)})


OPENING = {
    "date": "2024-03-02",
    "type": "initial",
    "famille": "Jugement d'ouverture",
    "nature": "Jugement d'ouverture d'une procédure de redressement judiciaire",
}


def account(account_id: int, balance: float, kind: str = "checking") -> dict[str, Any]:
    return {
        "id": account_id,
        "name": f"Compte {account_id}",
        "balance": balance,
        "accounting_balance": balance,
        "instant_balance": balance,
        "type": kind,
        "currency_code": "EUR",
        "updated_at": "2026-11-20T16:10:09.429Z",
        "last_refresh_status": "successful",
        "data_access": "enabled",
        "pro": True,
    }


def transaction(
    account_id: int, day: date, amount: float, description: str, operation: str = "transfer"
) -> dict[str, Any]:
    return {
        "id": abs(hash((account_id, day, amount, description))) % 10**14,
        "amount": amount,
        "date": day.isoformat(),
        "booking_date": day.isoformat(),
        "value_date": day.isoformat(),
        "currency_code": "EUR",
        "clean_description": description.title(),
        "provider_description": description,
        "account_id": account_id,
        "category_id": 270,
        "operation_type": operation,
        "deleted": False,
        "future": False,
        "updated_at": f"{day.isoformat()}T18:00:00Z",
    }


def month_start(day: date, months_back: int) -> date:
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


@dataclass
class BankStory:
    """Two current accounts and a savings account, and a year the aggregates can be checked against by hand.

    Today the accounts hold -800 + 300 = -500 €. A 2,000 € payment on the first day
    of last month took the business from 1,500 € into the red, where it stayed. Every
    complete month, 3,000 € came in and went out the same day (10,000 € twelve months
    ago). One direct debit was rejected with its fee, another shows only by its fee,
    and a bounced cheque is not a direct debit.
    """

    today: date
    accounts: list[dict[str, Any]]
    lines: dict[int, list[dict[str, Any]]]

    @property
    def overdraft_start(self) -> date:
        return month_start(self.today, 1)


def bank_story() -> BankStory:
    today = timezone.localdate()
    a, b = 48178048, 48178049
    lines: dict[int, list[dict[str, Any]]] = {a: [], b: []}
    lines[a].append(transaction(a, month_start(today, 1), -2000.0, "VIR SEPA FOURNISSEUR MATERIAUX"))
    for back in range(1, 13):
        payday = month_start(today, back) + timedelta(days=4)
        amount = 10_000.0 if back == 12 else 3_000.0
        lines[b].append(transaction(b, payday, amount, "VIR SEPA CLIENT FACTURE"))
        lines[b].append(transaction(b, payday, -amount, "PRLV SEPA URSSAF", "direct_debit"))
    rejected = today - timedelta(days=40)
    lines[a] += [
        transaction(a, rejected, -150.0, "PRLV SEPA EDF ENTREPRISES", "direct_debit"),
        transaction(a, rejected, 150.0, "REJET PRLV SEPA EDF ENTREPRISES"),
        transaction(a, rejected, -20.0, "FRAIS REJET PRLV"),
        transaction(a, rejected, 20.0, "VIR SEPA CLIENT ACOMPTE"),
    ]
    fee_only = today - timedelta(days=50)
    lines[b] += [
        transaction(b, fee_only, -15.0, "COMMISSION IMPAYÉ PRLV"),
        transaction(b, fee_only, 15.0, "VIR SEPA CLIENT SOLDE"),
    ]
    lines[a] += [
        transaction(a, today, 5000.0, "REMISE CHEQUE", "check"),
        transaction(a, today, -5000.0, "CHEQUE IMPAYE", "check"),
    ]
    return BankStory(today, [account(a, -800.0), account(b, 300.0), account(48178050, 52_000.0, "savings")], lines)


def serve_bank(apis: FakeApis, story: BankStory, *, tokens: dict[str, list[int]] | None = None) -> None:
    """Accounts per token (all to one token by default); each account's transactions in two pages."""
    tokens = tokens or {"tok_live": [acc["id"] for acc in story.accounts]}

    def accounts(request: dict[str, Any]) -> Answer:
        token = request["headers"].get("authorization", "").removeprefix("Bearer ")
        ids = tokens.get(token)
        if ids is None:
            return Answer(401, {"code": "invalid_token", "message": "The access token is invalid"})
        return Answer(200, {"resources": [acc for acc in story.accounts if acc["id"] in ids]})

    def transactions(request: dict[str, Any]) -> Answer:
        query = request["query"]
        lines = sorted(story.lines[int(query["account_id"])], key=lambda line: line["date"], reverse=True)
        half = len(lines) // 2
        if query.get("after") == "page2":
            return Answer(200, {"resources": lines[half:], "pagination": {}})
        next_uri = f"{TRANSACTIONS}?account_id={query['account_id']}&limit=500&after=page2"
        return Answer(200, {"resources": lines[:half], "pagination": {"next_uri": next_uri}})

    apis.answer(ACCOUNTS, accounts)
    apis.answer(TRANSACTIONS, transactions)


def quiet_sources(apis: FakeApis) -> None:
    """A company with a registry record, no BODACC notice, and the bank story."""
    apis.answer(REGISTRY, registry_answer(registry_record()))
    apis.answer(BODACC, bodacc_answer())
    serve_bank(apis, bank_story())


# --- actors -----------------------------------------------------------------------------------------


@pytest.fixture
def live_partner(db) -> PartnerClient:
    """A partner in production: its dossiers are scored from the live sources, not the sandbox."""
    partner_client = make_partner_client("Live Lender", ALL_SCOPES)
    partner_client.partner.is_sandbox = False
    partner_client.partner.save(update_fields=["is_sandbox"])
    return partner_client


def live_dossier(
    partner_client: PartnerClient,
    *,
    siren: str = SIREN,
    tokens: list[str] | None = None,
    statements: list[dict] | None = None,
) -> Dossier:
    return dossier_create(
        partner=partner_client.partner,
        siren=siren,
        requested_amount=Decimal("40000"),
        bank_tokens=tokens or [],
        actor=Actor(client=partner_client.api_client),
        statements=statements,
    )


def login(client, user) -> None:
    assert client.login(username=user.get_username(), password=PASSWORD)


# --- company registry -------------------------------------------------------------------------------


def test_the_registry_gives_identity_sector_age_headcount_and_the_latest_published_accounts(apis):
    apis.answer(REGISTRY, registry_answer(registry_record()))

    result = registry_lookup(SIREN)

    assert result.status == "ok"
    assert result.data["identity"] == {"name": "dj batiment", "naf_code": "43.22A", "active": True}
    company = result.data["company"]
    assert company["naf_section"] == "F"
    assert company["headcount"] == 34.5  # band 12: 20–49 employees
    expected_age = (timezone.localdate() - date(2017, 11, 6)).days / 365.25
    assert company["age_years"] == pytest.approx(expected_age, abs=0.01)
    assert result.data["financials"] == {"revenue": 1_320_000.0, "net_income": 52_800.0}  # 2023, not 2022
    assert "accounts 2023" in result.detail
    (request,) = apis.calls(REGISTRY)
    assert request["query"] == {"q": SIREN, "page": "1", "per_page": "1"}
    assert request["headers"]["user-agent"].startswith("riskoffice/")


def test_a_company_without_published_accounts_has_no_financials_and_says_so(apis):
    apis.answer(REGISTRY, registry_answer(registry_record(finances={}, tranche_effectif_salarie="NN")))

    result = registry_lookup(SIREN)

    assert result.status == "ok"
    assert result.data["financials"] == {}
    assert result.data["company"]["headcount"] is None
    assert result.detail == "no published accounts"


def test_a_ceased_company_is_marked_inactive(apis):
    apis.answer(REGISTRY, registry_answer(registry_record(etat_administratif="C", date_fermeture="2025-06-30")))

    result = registry_lookup(SIREN)

    assert result.data["identity"]["active"] is False
    assert result.data["company"]["active"] is False
    assert result.detail.startswith("ceased company")


def test_a_siren_the_registry_does_not_know_is_missing_not_failed(apis):
    apis.answer(REGISTRY, registry_answer(registry_record(siren=OTHER_SIREN)))

    result = registry_lookup(SIREN)

    assert result.status == "missing"
    assert result.detail == "SIREN not found in the registry"


def test_a_registry_refusal_fails_the_source_with_the_registry_words(apis):
    apis.answer(REGISTRY, Answer(400, {"erreur": "Veuillez indiquer au moins un paramètre de recherche."}))

    result = registry_lookup(SIREN)

    assert result.status == "failed"
    assert result.detail == "HTTP 400 (Veuillez indiquer au moins un paramètre de recherche.)"
    assert len(apis.calls(REGISTRY)) == 1  # a 4xx is not retried


# --- retries, rate limits, timeouts ------------------------------------------------------------------


def test_a_429_with_a_short_retry_after_is_honoured_then_retried(apis):
    apis.answer(
        REGISTRY, Answer(429, {"erreur": "Trop de requêtes"}, {"Retry-After": "1"}), registry_answer(registry_record())
    )

    started = time.monotonic()
    result = registry_lookup(SIREN)

    assert result.status == "ok"
    assert len(apis.calls(REGISTRY)) == 2
    assert time.monotonic() - started >= 1.0


def test_a_429_with_a_long_retry_after_fails_at_once_without_sleeping(apis):
    apis.answer(
        REGISTRY,
        Answer(429, {"erreur": "Trop de requêtes"}, {"Retry-After": "120"}),
        registry_answer(registry_record()),
    )

    started = time.monotonic()
    result = registry_lookup(SIREN)

    assert result.status == "failed"
    assert "429" in result.detail and "Retry-After 120 s" in result.detail
    assert len(apis.calls(REGISTRY)) == 1
    assert time.monotonic() - started < 1.0


def test_a_server_error_is_retried_and_the_second_answer_used(apis):
    apis.answer(REGISTRY, Answer(500, "<html>Internal Server Error</html>"), registry_answer(registry_record()))

    result = registry_lookup(SIREN)

    assert result.status == "ok"
    assert len(apis.calls(REGISTRY)) == 2


def test_retries_are_bounded_to_three_attempts(apis):
    apis.answer(REGISTRY, Answer(503, {"message": "maintenance"}))

    result = registry_lookup(SIREN)

    assert result.status == "failed"
    assert result.detail == "HTTP 503 (maintenance) after 3 attempts"
    assert len(apis.calls(REGISTRY)) == 3


def test_a_source_slower_than_the_timeout_fails_without_waiting_for_it(apis, settings):
    settings.SOURCE_TIMEOUT_SECONDS = 0.3
    apis.answer(REGISTRY, Answer(200, {"results": []}, delay=2.0))

    started = time.monotonic()
    result = registry_lookup(SIREN)

    assert result.status == "failed"
    assert result.detail == "no answer within 0.3 s"
    assert time.monotonic() - started < 1.5
    assert len(apis.calls(REGISTRY)) == 1  # a read timeout is not retried


def test_a_source_nobody_listens_on_fails_after_its_retries(settings, db):
    with socket.socket() as probe:  # a port that was free a moment ago: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.COMPANY_REGISTRY_URL = f"http://127.0.0.1:{port}"

    result = registry_lookup(SIREN)

    assert result.status == "failed"
    assert result.detail == "connection failed after 3 attempts"


# --- BODACC ---------------------------------------------------------------------------------------------


def test_bodacc_an_opening_judgment_as_a_json_string_with_registre_as_a_string_is_an_open_proceeding(apis):
    apis.answer(BODACC, bodacc_answer(bodacc_notice(jugement=OPENING, as_string=True)))

    result = bodacc_lookup(SIREN)

    assert result.status == "ok"
    assert result.data["open_insolvency_proceeding"] is True
    assert result.detail == "open: redressement since 2024-03-02"
    (request,) = apis.calls(BODACC)
    assert request["query"]["where"] == f'registre="{SIREN}" AND familleavis="collective"'
    assert request["query"]["order_by"] == "dateparution desc"


def test_bodacc_a_liquidation_followed_by_a_closure_as_objects_with_registre_as_an_array_is_closed(apis):
    liquidation = {
        "date": "2020-06-10",
        "type": "initial",
        "famille": "Jugement d'ouverture de liquidation judiciaire",
        "nature": "Jugement d'ouverture de liquidation judiciaire",
    }
    closure = {
        "date": "2020-11-19",
        "type": "initial",
        "famille": "Jugement de clôture",
        "nature": "Jugement de clôture pour insuffisance d'actif",
    }
    registre = ["833 310 592", "833310592"]
    apis.answer(
        BODACC,
        bodacc_answer(
            bodacc_notice(jugement=closure, as_string=False, registre=registre, published="2020-11-30"),
            bodacc_notice(jugement=liquidation, as_string=False, registre=registre, published="2020-06-20"),
        ),
    )

    result = bodacc_lookup(SIREN)

    assert result.data["open_insolvency_proceeding"] is False
    assert [n["kind"] for n in result.data["notices"]] == ["closure", "liquidation"]
    assert result.detail == "2 notice(s), no proceeding open"


def test_bodacc_ignores_cancelled_notices_and_notices_about_another_company(apis):
    apis.answer(
        BODACC,
        bodacc_answer(
            bodacc_notice(jugement=OPENING, typeavis="annulation"),
            bodacc_notice(jugement=OPENING, registre="552 100 554,552100554"),
        ),
    )

    result = bodacc_lookup(SIREN)

    assert result.data["open_insolvency_proceeding"] is False
    assert result.detail == "no collective-proceeding notice"


def test_bodacc_a_sauvegarde_opened_after_an_older_closure_is_open(apis):
    old_closure = {"date": "2019-01-10", "famille": "Jugement de clôture", "nature": "Jugement de clôture"}
    sauvegarde = {
        "date": "2025-02-03",
        "famille": "Jugement d'ouverture",
        "nature": "Jugement d'ouverture d'une procédure de sauvegarde",
    }
    apis.answer(BODACC, bodacc_answer(bodacc_notice(jugement=sauvegarde), bodacc_notice(jugement=old_closure)))

    assert bodacc_lookup(SIREN).data["open_proceeding"]["kind"] == "sauvegarde"


# --- open banking --------------------------------------------------------------------------------------


def test_open_banking_reads_every_page_of_every_current_account_and_derives_the_six_aggregates(apis):
    story = bank_story()
    serve_bank(apis, story)

    result = open_banking_lookup(["tok_live"])

    assert result.status == "ok", result.detail
    overdraft_days = (story.today - story.overdraft_start).days + 1
    assert result.data == {
        "avg_balance_12m": round((overdraft_days * -500 + (365 - overdraft_days) * 1500) / 365, 0),
        "min_balance_12m": -500,
        "months_negative_balance_12m": 1,  # last month ended in the red; the eleven before did not
        "days_overdraft_12m": overdraft_days,
        "inflow_regularity": round(11 / 12, 3),  # the 10,000 € month is out of line
        "rejected_sepa_debits_12m": 2,  # a reversal with its fee counts once; a fee alone once; a cheque never
    }
    assert result.detail.startswith("2 account(s)")
    pages = apis.calls(TRANSACTIONS)
    assert sorted((p["query"]["account_id"], "after" in p["query"]) for p in pages) == [
        ("48178048", False),
        ("48178048", True),
        ("48178049", False),
        ("48178049", True),
    ]  # savings not read
    first = next(p for p in pages if "after" not in p["query"])
    assert first["query"]["min_date"] == month_start(story.today, 12).isoformat()
    assert first["query"]["max_date"] == story.today.isoformat()
    assert first["query"]["limit"] == "500"
    headers = first["headers"]
    assert headers["bridge-version"] == "2025-01-15"
    assert headers["client-id"] == "client-id-test"
    assert headers["client-secret"] == "client-secret-test"
    assert headers["authorization"] == "Bearer tok_live"


def test_open_banking_aggregates_the_accounts_of_several_tokens_together(apis):
    story = bank_story()
    serve_bank(apis, story, tokens={"tok_bank_a": [48178048], "tok_bank_b": [48178049, 48178050]})

    both = open_banking_lookup(["tok_bank_a", "tok_bank_b"])

    assert both.status == "ok"
    assert both.data["min_balance_12m"] == -500  # -800 + 300: the accounts taken together
    assert both.data["rejected_sepa_debits_12m"] == 2
    assert len(apis.calls(ACCOUNTS)) == 2  # one call per token


def test_open_banking_with_invalid_client_credentials_fails_with_the_aggregator_code(apis):
    apis.answer(
        ACCOUNTS,
        Answer(401, {"code": "invalid_client_credentials", "message": "The client_id or client_secret is invalid"}),
    )

    result = open_banking_lookup(["tok_live"])

    assert result.status == "failed"
    assert "invalid_client_credentials" in result.detail
    assert result.data is None


def test_open_banking_fails_as_a_whole_when_one_token_fails(apis):
    serve_bank(apis, bank_story(), tokens={"tok_ok": [48178048]})

    result = open_banking_lookup(["tok_ok", "tok_expired"])

    assert result.status == "failed"
    assert "invalid_token" in result.detail


def test_open_banking_without_a_token_is_missing_and_calls_nobody(apis):
    result = open_banking_lookup([])

    assert result.status == "missing"
    assert apis.requests == []


def test_open_banking_refuses_a_next_link_to_another_host(apis):
    apis.answer(ACCOUNTS, Answer(200, {"resources": [account(1, 100.0)]}))
    apis.answer(
        TRANSACTIONS,
        Answer(
            200,
            {
                "resources": [],
                "pagination": {"next_uri": "https://collector.example/v3/aggregation/transactions?after=x"},
            },
        ),
    )

    result = open_banking_lookup(["tok_live"])

    assert result.status == "failed"
    assert "refused a link outside" in result.detail


# --- the dossier: live sources, cache, degradation ----------------------------------------------------


def test_a_live_partners_dossier_is_gathered_from_the_live_sources_with_provenance(apis, live_partner):
    quiet_sources(apis)
    dossier = live_dossier(live_partner, tokens=["tok_live"])

    gathered = gather_for_dossier(dossier)

    assert gathered.identity["name"] == "dj batiment"
    assert gathered.company["naf_section"] == "F"
    assert gathered.financials == {"revenue": 1_320_000.0, "net_income": 52_800.0}
    assert gathered.bank["rejected_sepa_debits_12m"] == 2
    assert gathered.events == {
        "payment_delays_12m": 0,
        "max_payment_delay_days": 0,
        "open_insolvency_proceeding": False,
    }
    provenance = gathered.provenance()
    assert set(provenance) == {"registry", "bodacc", "open_banking", "financial_statements", "negative_events"}
    assert provenance["registry"]["freshness"] == {"cached": False, "age_seconds": 0}
    assert gathered.flags == ["missing:financial_statements"]


def test_a_second_gather_within_the_cache_time_asks_the_registry_and_bodacc_nothing(apis, live_partner):
    quiet_sources(apis)
    dossier = live_dossier(live_partner, tokens=["tok_live"])
    gather_for_dossier(dossier)
    SourceCache.objects.update(fetched_at=timezone.now() - timedelta(hours=2))
    asked = len(apis.requests)

    again = gather_for_dossier(dossier)

    new_requests = apis.requests[asked:]
    assert [r["path"] for r in new_requests if r["path"] in (REGISTRY, BODACC)] == []
    assert {r["path"] for r in new_requests} == {ACCOUNTS, TRANSACTIONS}  # the bank is never cached
    registry = again.provenance()["registry"]["freshness"]
    assert registry["cached"] is True
    assert 7000 <= registry["age_seconds"] <= 7300
    assert again.provenance()["open_banking"]["freshness"]["cached"] is False
    assert again.identity["name"] == "dj batiment"


def test_an_expired_cache_entry_is_fetched_again(apis, live_partner, settings):
    quiet_sources(apis)
    dossier = live_dossier(live_partner)
    gather_for_dossier(dossier)
    SourceCache.objects.filter(source="registry").update(expires_at=timezone.now() - timedelta(seconds=1))

    again = gather_for_dossier(dossier)

    assert len(apis.calls(REGISTRY)) == 2
    assert len(apis.calls(BODACC)) == 1
    assert again.provenance()["registry"]["freshness"]["cached"] is False


def test_a_failure_is_not_cached(apis, live_partner):
    apis.answer(REGISTRY, Answer(400, {"erreur": "quota"}), registry_answer(registry_record()))
    apis.answer(BODACC, bodacc_answer())
    dossier = live_dossier(live_partner)

    assert gather_for_dossier(dossier).flags[0] == "failed:registry"
    assert gather_for_dossier(dossier).identity["name"] == "dj batiment"


def test_an_open_bodacc_proceeding_reaches_the_features(apis, live_partner, champion):
    quiet_sources(apis)
    apis.answer(BODACC, bodacc_answer(bodacc_notice(jugement=OPENING)))
    dossier = live_dossier(live_partner)

    score = dossier_score(dossier_id=dossier.pk)

    assert score.snapshot.features["open_insolvency_proceeding"] == 1
    assert "knockout:open_insolvency_proceeding" in score.rules_fired
    assert score.decision == "refuse"


def test_a_dossier_whose_live_sources_all_fail_is_still_scored_with_flags_and_missing_data_reasons(
    apis, live_partner, champion, client, analyst
):
    apis.answer(REGISTRY, Answer(400, {"erreur": "Service indisponible"}))
    apis.answer(BODACC, Answer(400, {"error_code": "ODSQLError", "message": "Invalid where clause"}))
    apis.answer(ACCOUNTS, Answer(401, {"code": "invalid_client_credentials", "message": "Bad credentials"}))
    dossier = live_dossier(live_partner, tokens=["tok_live"])

    score = dossier_score(dossier_id=dossier.pk)

    assert score is not None
    dossier.refresh_from_db()
    assert dossier.status == Dossier.Status.SCORED
    assert score.data_flags == [
        "failed:registry",
        "failed:bodacc",
        "failed:open_banking",
        "missing:financial_statements",
    ]
    assert score.snapshot.features["revenue"] is None
    assert score.snapshot.features["avg_balance_12m"] is None
    assert any(f["missing"] and f["text"]["en"].startswith("Missing data") for f in score.factors)
    assert score.snapshot.provenance["open_banking"]["detail"].startswith("HTTP 401 (invalid_client_credentials")

    login(client, analyst)
    page = client.get(f"/dossiers/{dossier.pk}/").content.decode()
    assert 'data-testid="data-flags"' in page
    assert "Data missing or failed:" in page
    assert "company registry failed (HTTP 400 (Service indisponible))" in page
    assert "open banking failed" in page


def test_a_sandbox_partners_dossier_never_calls_the_live_sources(apis, marketplace, champion):
    dossier = dossier_create(
        partner=marketplace.partner,
        siren=SIREN,
        requested_amount=Decimal("40000"),
        bank_tokens=["tok"],
        actor=Actor(client=marketplace.api_client),
    )

    score = dossier_score(dossier_id=dossier.pk)

    assert score.data_flags == []
    assert set(score.snapshot.provenance) == {
        "sandbox.registry",
        "sandbox.financial_statements",
        "sandbox.open_banking",
        "sandbox.events",
    }
    assert apis.requests == []


# --- negative events on file ---------------------------------------------------------------------------


def _event(kind: str, days_ago: int, **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "occurred_on": timezone.localdate() - timedelta(days=days_ago),
        "source": "partner:1",
        **extra,
    }


def test_negative_events_of_the_last_twelve_months_count_as_delays_rejected_debits_and_proceedings(apis, live_partner):
    quiet_sources(apis)
    dossier = live_dossier(live_partner, tokens=["tok_live"])
    company = dossier.company
    for values in (
        _event("payment_delay", 30, days_late=15),
        _event("payment_delay", 200, days_late=40),
        _event("payment_delay", 400, days_late=90),  # older than 12 months: not counted
        _event("sepa_incident", 10, reason_code="AM04"),
        _event("score_drop", 5),
    ):
        NegativeEvent.objects.create(company=company, **values)

    gathered = gather_for_dossier(dossier)

    assert gathered.events == {
        "payment_delays_12m": 2,
        "max_payment_delay_days": 40,
        "open_insolvency_proceeding": False,
    }
    assert gathered.bank["rejected_sepa_debits_12m"] == 2 + 1  # the bank's two and the incident on file

    NegativeEvent.objects.create(company=company, **_event("insolvency_proceeding", 3))
    assert gather_for_dossier(dossier).events["open_insolvency_proceeding"] is True


def test_a_sandbox_dossier_adds_the_events_on_file_to_its_profile(marketplace):
    dossier = dossier_create(
        partner=marketplace.partner,
        siren=SIREN,
        requested_amount=Decimal("40000"),
        bank_tokens=[],
        actor=Actor(client=marketplace.api_client),
    )
    before = gather_for_dossier(dossier)
    NegativeEvent.objects.create(company=dossier.company, **_event("payment_delay", 20, days_late=75))
    NegativeEvent.objects.create(company=dossier.company, **_event("sepa_incident", 20))

    after = gather_for_dossier(dossier)

    assert after.events["payment_delays_12m"] == before.events["payment_delays_12m"] + 1
    assert after.events["max_payment_delay_days"] == max(75, before.events["max_payment_delay_days"])
    assert after.bank == {"rejected_sepa_debits_12m": 1}  # no bank token: only what is on file
    assert after.provenance()["negative_events"]["status"] == "ok"


# --- financial statements from the partner --------------------------------------------------------------

STATEMENT = {
    "fiscal_year_end": "2025-12-31",
    "revenue": 812_345,
    "net_income": "40117.50",
    "ebitda": 95_000,
    "equity": 210_000,
    "total_assets": 600_000,
    "current_assets": 350_000,
    "current_liabilities": 250_000,
    "financial_debt": 180_000,
}
VALID = {"company": {"siren": SIREN}, "requested_amount": 40000}


def test_statements_in_the_payload_are_stored_audited_and_scored(api, champion):
    response = api.post(
        "/api/v1/scores",
        dict(VALID, financial_statements=[STATEMENT, {"fiscal_year_end": "2024-12-31", "revenue": 700_000}]),
    )
    assert response.status_code == 202, response.content
    dossier_id = response.json()["id"]

    statements = FinancialStatement.objects.order_by("-fiscal_year_end")
    assert [s.fiscal_year_end.isoformat() for s in statements] == ["2025-12-31", "2024-12-31"]
    latest = statements[0]
    assert latest.source == "partner"
    assert latest.supplied_by_client == api.partner.api_client
    assert latest.net_income == Decimal("40117.50")
    audit = AuditEvent.objects.get(action="dossier.created", object_id=dossier_id)
    assert audit.after["financial_statements"][0] == {
        "fiscal_year_end": "2025-12-31",
        "revenue": "812345.00",
        "net_income": "40117.50",
        "ebitda": "95000.00",
        "equity": "210000.00",
        "total_assets": "600000.00",
        "current_assets": "350000.00",
        "current_liabilities": "250000.00",
        "financial_debt": "180000.00",
    }

    score = dossier_score(dossier_id=dossier_id)

    features = FeatureSnapshot.objects.get(pk=score.snapshot_id).features
    assert features["revenue"] == 812_345.0
    assert features["equity_ratio"] == pytest.approx(0.35)
    assert features["current_ratio"] == pytest.approx(1.4)
    assert score.snapshot.provenance["financial_statements"]["detail"].startswith("fiscal year ending 2025-12-31")


def test_a_live_partners_statement_overrides_the_registrys_revenue(apis, live_partner, champion):
    quiet_sources(apis)
    dossier = live_dossier(
        live_partner,
        statements=[{"fiscal_year_end": date(2025, 12, 31), "revenue": Decimal("812345"), "equity": Decimal("1000")}],
    )

    score = dossier_score(dossier_id=dossier.pk)

    features = score.snapshot.features
    assert features["revenue"] == 812_345.0  # not the registry's 1,320,000
    assert features["net_margin"] == pytest.approx(52_800 / 812_345)  # the registry's net income remains
    assert "missing:financial_statements" not in score.data_flags


def test_another_partners_statements_are_not_used_for_a_dossier_of_the_same_company(apis, live_partner, db):
    quiet_sources(apis)
    other = make_partner_client("Rival Lender", ALL_SCOPES)
    FinancialStatement.objects.create(
        company=live_dossier(live_partner).company,
        fiscal_year_end=date(2025, 12, 31),
        source="partner",
        supplied_by_client=other.api_client,
        revenue=Decimal(5),
    )

    gathered = gather_for_dossier(live_dossier(live_partner))

    assert gathered.financials["revenue"] == 1_320_000.0
    assert "missing:financial_statements" in gathered.flags


@pytest.mark.parametrize(
    ("statements", "field_name"),
    [
        ([dict(STATEMENT, revenue=-5)], "financial_statements[0].revenue"),
        ([STATEMENT, dict(STATEMENT, total_assets=-1)], "financial_statements[1].total_assets"),
        ([dict(STATEMENT, goodwill=12)], "financial_statements[0].goodwill"),
        ([dict(STATEMENT, revenue=True)], "financial_statements[0].revenue"),
        ([dict(STATEMENT, revenue="12.345")], "financial_statements[0].revenue"),
        ([{"revenue": 10}], "financial_statements[0].fiscal_year_end"),
        ([{"fiscal_year_end": "2025-12-31"}], "financial_statements[0]"),
        ([dict(STATEMENT, fiscal_year_end="2999-12-31")], "financial_statements[0].fiscal_year_end"),
        ([STATEMENT] * 6, "financial_statements"),
        ({"revenue": 1}, "financial_statements"),
    ],
)
def test_bad_statements_are_refused_with_400_naming_the_field_and_nothing_is_written(api, statements, field_name):
    response = api.post("/api/v1/scores", dict(VALID, financial_statements=statements))

    assert response.status_code == 400, response.content
    assert field_name in response.json()["errors"], response.json()["errors"]
    assert Dossier.objects.count() == 0
    assert FinancialStatement.objects.count() == 0


def test_a_live_partner_sends_statements_through_the_api_like_any_partner(client, live_partner):
    token = obtain_token(client, live_partner)
    response = client.post(
        "/api/v1/scores",
        json.dumps(dict(VALID, financial_statements=[STATEMENT])),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 202
    assert FinancialStatement.objects.get().supplied_by_client == live_partner.api_client


# --- financial statements from an analyst -------------------------------------------------------------------


@pytest.fixture
def scored(marketplace, champion) -> Dossier:
    dossier = dossier_create(
        partner=marketplace.partner,
        siren=SIREN,
        requested_amount=Decimal("40000"),
        bank_tokens=[],
        actor=Actor(client=marketplace.api_client),
    )
    dossier_score(dossier_id=dossier.pk)
    return dossier


def test_an_analyst_records_a_statement_from_the_dossier_page_and_sees_it_listed(client, analyst, scored):
    login(client, analyst)
    page = client.get(f"/dossiers/{scored.pk}/").content.decode()
    assert 'data-testid="challenge-statement"' in page

    response = client.post(
        f"/dossiers/{scored.pk}/statement",
        {"fiscal_year_end": "2025-06-30", "revenue": "640000", "equity": "-12000", "total_assets": "300000"},
    )

    assert response.status_code == 302
    statement = FinancialStatement.objects.get()
    assert (statement.source, statement.supplied_by_user, statement.company) == ("analyst", analyst, scored.company)
    assert statement.equity == Decimal("-12000")
    assert statement.net_income is None
    audit = AuditEvent.objects.get(action="dossier.statement_recorded", object_id=str(scored.pk))
    assert audit.actor_user == analyst
    assert audit.after["revenue"] == "640000" and audit.after["fiscal_year_end"] == "2025-06-30"
    listing = client.get(f"/dossiers/{scored.pk}/").content.decode()
    assert 'data-testid="statements"' in listing
    assert "2025-06-30" in listing and analyst.get_username() in listing
    assert gather_for_dossier(scored).financials["revenue"] == 640_000.0


def test_an_analyst_statement_without_any_figure_is_refused(client, analyst, scored):
    login(client, analyst)

    response = client.post(f"/dossiers/{scored.pk}/statement", {"fiscal_year_end": "2025-06-30"})

    assert response.status_code == 400
    assert "Give at least one figure." in response.content.decode()
    assert FinancialStatement.objects.count() == 0


def test_an_analyst_statement_with_negative_revenue_is_refused(client, analyst, scored):
    login(client, analyst)

    response = client.post(f"/dossiers/{scored.pk}/statement", {"fiscal_year_end": "2025-06-30", "revenue": "-1"})

    assert response.status_code == 400
    assert FinancialStatement.objects.count() == 0


def test_an_auditor_cannot_record_a_statement(client, auditor, scored):
    login(client, auditor)

    assert 'data-testid="statement-form"' not in client.get(f"/dossiers/{scored.pk}/").content.decode()
    response = client.post(f"/dossiers/{scored.pk}/statement", {"fiscal_year_end": "2025-06-30", "revenue": "1"})

    assert response.status_code == 403
    assert FinancialStatement.objects.count() == 0


def test_an_outsider_gets_403_and_an_unknown_dossier_404(client, outsider, analyst, scored):
    login(client, outsider)
    assert client.post(f"/dossiers/{scored.pk}/statement", {"fiscal_year_end": "2025-06-30"}).status_code == 403
    login(client, analyst)
    unknown = "00000000-0000-0000-0000-000000000000"
    assert client.post(f"/dossiers/{unknown}/statement", {"fiscal_year_end": "2025-06-30"}).status_code == 404


def test_when_bodacc_fails_the_insolvency_feature_is_missing_not_no_proceeding():
    from django.utils import timezone

    from scoring.model.features import build_features
    from scoring.sources import GatheredData, SourceResult, merge_events

    gathered = GatheredData(
        events={"payment_delays_12m": 0, "max_payment_delay_days": 0, "open_insolvency_proceeding": None}
    )
    merge_events(gathered, SourceResult("events_on_file", "missing", timezone.now()), always_report=False)
    features = build_features(company={}, financials={}, bank=None, events=gathered.events, requested_amount=1)
    assert features["open_insolvency_proceeding"] is None
