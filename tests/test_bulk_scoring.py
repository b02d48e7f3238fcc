"""Bulk scoring: `manage.py score_file` and the back-office upload → progress → download, with who may do what."""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import time
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command

from riskoffice.models import AuditEvent
from riskoffice.roles import ANALYST
from scoring.bulk import rows as bulk
from scoring.bulk.jobs import bulk_job_create, bulk_job_run
from scoring.bulk.tasks import run_bulk_job
from scoring.model import engine
from scoring.model.features import FEATURE_NAMES
from scoring.model.registry import model_register
from scoring.model.synthetic import generate_portfolio
from scoring.models import BulkScoringJob
from scoring.policy.apply import policy_apply
from scoring.policy.scale import band_for, score_for
from scoring.policy.versions import policy_create_version, policy_values
from scoring.selectors import policy_current
from tests.conftest import ARTIFACTS, PASSWORD, login, trained_once

pytestmark = pytest.mark.django_db

FEATURES = FEATURE_NAMES  # what the conftest champion is trained on


# --- files ----------------------------------------------------------------------------------------


def portfolio_rows(n: int, seed: int = 3) -> list[dict[str, Any]]:
    """Rows as a partner would export them: an id, the requested amount, the model's features."""
    rows = []
    for i, (company, _, _) in enumerate(generate_portfolio(n, seed=seed)):
        rows.append({"id": f"R{i:05d}", "requested_amount": company.requested_amount, **company.features()})
    return rows


def csv_bytes(
    rows: list[dict[str, Any]], *, delimiter: str = ",", bom: bool = False, decimal_comma: bool = False
) -> bytes:
    def cell(value: Any) -> str:
        text = "" if value is None else str(value)
        return text.replace(".", ",") if decimal_comma and isinstance(value, float) else text

    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(list(rows[0]))
    for row in rows:
        writer.writerow([cell(row[column]) for column in rows[0]])
    return (codecs.BOM_UTF8 if bom else b"") + out.getvalue().encode()


def read_output(data: bytes, *, delimiter: str = ",") -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=delimiter)
    return list(reader.fieldnames), list(reader)


def features_of(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row[name] for name in FEATURES}


def run_score_file(tmp_path: Path, data: bytes, *args: str) -> tuple[bytes, str]:
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_bytes(data)
    stdout = io.StringIO()
    call_command("score_file", str(source), "--out", str(target), *args, stdout=stdout)
    return target.read_bytes(), stdout.getvalue()


def expected_for(champion, policy, row: dict[str, Any]) -> dict[str, Any]:
    """What score_compute's own path says about one row: explain_one, the scale, the policy, the factors."""
    features = features_of(row)
    explanation = engine.explain_one(engine.model_load(champion), features)
    pd = explanation.probability_of_default
    decision = policy_apply(policy, pd=pd, features=features, requested_amount=row["requested_amount"])
    factors = engine.factors_from(explanation, features, top=3)
    return {
        "pd": pd,
        "score": score_for(pd, "b2b"),
        "band": band_for(pd),
        "decision": decision.decision,
        "rules_fired": "|".join(decision.rules_fired),
        "factors": [f"{bulk.FACTOR_PREFIX[f['direction']]}: " + f["text"]["en"] for f in factors],
    }


# --- the command ----------------------------------------------------------------------------------


def test_score_file_appends_pd_score_band_decision_rules_and_three_factors_to_every_row(tmp_path, champion):
    rows = portfolio_rows(60)
    output, stdout = run_score_file(tmp_path, csv_bytes(rows))

    columns, scored = read_output(output)
    assert columns == [
        *rows[0],
        "probability_of_default",
        "score",
        "band",
        "decision",
        "recommended_limit",
        "rules_fired",
        "factor_1",
        "factor_2",
        "factor_3",
        "error",
    ]
    assert [row["id"] for row in scored] == [row["id"] for row in rows]
    policy = policy_current("b2b")
    for row, out in zip(rows, scored, strict=True):
        expected = expected_for(champion, policy, row)
        assert abs(float(out["probability_of_default"]) - expected["pd"]) < 1e-9
        assert int(out["score"]) == expected["score"]
        assert out["band"] == expected["band"]
        assert out["decision"] == expected["decision"]
        assert out["rules_fired"] == expected["rules_fired"]
        assert [out["factor_1"], out["factor_2"], out["factor_3"]] == expected["factors"]
        assert out["error"] == ""
        # Passed-through columns come back exactly as they were written.
        assert out["revenue"] == ("" if row["revenue"] is None else str(row["revenue"]))
    assert "60 rows, 60 scored, 0 errors" in stdout
    assert champion.label in stdout and policy.label in stdout


def test_a_row_with_a_non_numeric_value_gets_an_error_and_the_rest_of_the_file_is_scored(tmp_path, champion):
    rows = portfolio_rows(5)
    rows[2]["revenue"] = "lots"
    rows[3]["headcount"] = None  # an empty cell is missing data, not an error
    output, stdout = run_score_file(tmp_path, csv_bytes(rows))

    _, scored = read_output(output)
    assert scored[2]["error"] == "revenue: “lots” is not a number"
    assert scored[2]["probability_of_default"] == scored[2]["score"] == scored[2]["decision"] == ""
    assert scored[2]["id"] == rows[2]["id"]
    expected = expected_for(champion, policy_current("b2b"), rows[3])
    assert scored[3]["error"] == ""
    assert abs(float(scored[3]["probability_of_default"]) - expected["pd"]) < 1e-9
    assert all(scored[i]["decision"] for i in (0, 1, 3, 4))
    assert "5 rows, 4 scored, 1 errors" in stdout


def test_a_row_with_more_cells_than_the_header_gets_an_error_and_trailing_empty_cells_are_ignored(tmp_path, champion):
    rows = portfolio_rows(3)
    lines = csv_bytes(rows).decode().splitlines()
    lines[0] += ",,"  # a spreadsheet's empty trailing columns
    lines[1] += ",,"
    lines[2] += ",surprise"
    output, stdout = run_score_file(tmp_path, ("\r\n".join(lines) + "\r\n").encode())

    columns, scored = read_output(output)
    assert columns[: len(rows[0])] == list(rows[0])
    assert scored[0]["error"] == "" and scored[0]["decision"]
    assert scored[1]["error"] == f"The row has {len(rows[0]) + 1} cells; the header names {len(rows[0])} columns."
    assert scored[1]["decision"] == "" and scored[1]["id"] == rows[1]["id"]
    assert "3 rows, 2 scored, 1 errors" in stdout


def test_a_french_excel_file_with_bom_semicolons_and_decimal_commas_is_read_and_written_back_alike(tmp_path, champion):
    rows = portfolio_rows(20, seed=8)
    output, stdout = run_score_file(tmp_path, csv_bytes(rows, delimiter=";", bom=True, decimal_comma=True))

    assert output.startswith(codecs.BOM_UTF8)
    assert output.splitlines()[0].decode("utf-8-sig").startswith("id;requested_amount;")
    _, scored = read_output(output, delimiter=";")
    policy = policy_current("b2b")
    for row, out in zip(rows, scored, strict=True):
        assert out["error"] == ""
        pd = float(out["probability_of_default"].replace(",", "."))
        assert abs(pd - expected_for(champion, policy, row)["pd"]) < 1e-9
    assert "20 rows, 20 scored, 0 errors" in stdout


def test_requested_amount_and_naf_code_columns_feed_the_policy_knockouts(tmp_path, champion, senior):
    values = {**policy_values(policy_current("b2b")), "max_amount": 50_000, "sanctioned_naf_codes": ["92.00Z"]}
    policy_create_version(segment="b2b", values=values, note="A cap and a sanctioned sector.", user=senior)
    rows = portfolio_rows(3)
    for row in rows:
        row["naf_code"] = ""
    rows[0]["requested_amount"], rows[1]["requested_amount"] = 60_000.0, 1_000.0
    rows[2]["requested_amount"], rows[2]["naf_code"] = 1_000.0, "92.00Z"
    output, _ = run_score_file(tmp_path, csv_bytes(rows))

    _, scored = read_output(output)
    assert (scored[0]["decision"], scored[0]["rules_fired"]) == ("refuse", "knockout:amount_above_cap")
    assert scored[1]["rules_fired"].startswith("threshold:")
    assert (scored[2]["decision"], scored[2]["rules_fired"]) == ("refuse", "knockout:sanctioned_naf_code")


def test_a_calibrated_champion_scores_each_row_exactly_like_explain_one(champion):
    calibrated = model_register(
        segment="b2b",
        trained=dataclasses.replace(trained_once(), calibration={"a": 0.8, "b": -0.35}),
        trained_by="tests",
        promote=True,
    )
    rows = portfolio_rows(40, seed=21)
    scored = bulk.score_rows(
        [{k: "" if v is None else str(v) for k, v in row.items()} for row in rows], calibrated, policy_current("b2b")
    )
    loaded = engine.model_load(calibrated)
    assert loaded.calibration == {"a": 0.8, "b": -0.35}
    for row, out in zip(rows, scored, strict=True):
        expected = engine.explain_one(loaded, features_of(row)).probability_of_default
        assert abs(out["probability_of_default"] - expected) < 1e-9


def test_ten_thousand_rows_score_in_well_under_a_minute(tmp_path, champion):
    data = csv_bytes(portfolio_rows(10_000, seed=5))
    started = time.monotonic()
    output, stdout = run_score_file(tmp_path, data)
    assert time.monotonic() - started < 30
    assert "10000 rows, 10000 scored, 0 errors" in stdout
    assert len(output.splitlines()) == 10_001


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The file is empty."),
        (b",,,\r\n,,\r\n", "The file is empty."),
        (b"\xff\xfeid,revenue\n1,2\n", "not UTF-8 text"),
        (b"PK\x03\x04rest of a workbook", "This is an Excel workbook, not a CSV file"),
        (b"12,5000,3\n13,7000,4\n", "The header names none of the model's features"),
        (b"id,revenue\n", "The file has a header but no rows to score."),
        (b"id,revenue,revenue\n1,2,3\n", "The header names these columns twice: revenue."),
        (b"id,score\n1,2\n", "The file already has a column named score"),
    ],
)
def test_a_file_that_cannot_be_scored_is_a_clear_command_error(tmp_path, champion, content, message):
    source = tmp_path / "in.csv"
    source.write_bytes(content)
    with pytest.raises(CommandError, match=message):
        call_command("score_file", str(source), "--out", str(tmp_path / "out.csv"))
    assert not (tmp_path / "out.csv").exists()


def test_a_missing_input_file_is_a_command_error(tmp_path, champion):
    with pytest.raises(CommandError, match="no such file"):
        call_command("score_file", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "out.csv"))


def test_a_segment_without_a_champion_is_a_command_error(tmp_path, champion):
    source = tmp_path / "in.csv"
    source.write_bytes(csv_bytes(portfolio_rows(2)))
    with pytest.raises(CommandError, match="No champion model for segment b2c"):
        call_command("score_file", str(source), "--out", str(tmp_path / "out.csv"), "--segment", "b2c")


# --- the back-office ---------------------------------------------------------------------------------


def upload(client, data: bytes, *, name: str = "portfolio.csv", segment: str = "b2b"):
    return client.post("/scoring/bulk/", {"segment": segment, "file": _named(data, name)})


def _named(data: bytes, name: str) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


@pytest.fixture
def enqueued(monkeypatch) -> list[str]:
    """Job ids handed to the Celery task (no worker runs in these tests)."""
    sent: list[str] = []
    monkeypatch.setattr(run_bulk_job, "delay", lambda job_id: sent.append(job_id))
    return sent


@pytest.fixture
def job(champion, analyst) -> BulkScoringJob:
    return bulk_job_create(user=analyst, segment="b2b", filename="portfolio.csv", data=csv_bytes(portfolio_rows(30)))


def test_an_analyst_uploads_a_file_and_a_queued_job_is_enqueued_after_commit(
    client, analyst, champion, enqueued, django_capture_on_commit_callbacks
):
    login(client, analyst)
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, csv_bytes(portfolio_rows(30)))

    job = BulkScoringJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/scoring/bulk/{job.pk}/"
    assert (job.status, job.rows_total, job.rows_done) == ("queued", 30, 0)
    assert (job.filename, job.segment, job.created_by, job.model_version) == ("portfolio.csv", "b2b", analyst, champion)
    assert enqueued == [str(job.pk)]
    event = AuditEvent.objects.get(action="bulk_job.created")
    assert event.actor_user == analyst and event.object_id == str(job.pk)
    assert event.after["rows"] == 30 and event.after["model_version"] == champion.label

    page = client.get(response["Location"]).content.decode()
    assert "30 rows queued for scoring." in page
    assert "<progress" in page and 'hx-trigger="every 1s"' in page and "js/htmx.min.js" in page


def test_running_the_job_scores_every_row_and_the_download_returns_the_csv(client, analyst, job):
    finished = bulk_job_run(job_id=job.pk)

    job.refresh_from_db()
    assert finished.pk == job.pk
    assert (job.status, job.rows_done, job.rows_total, job.error) == ("done", 30, 30, "")
    assert job.finished_at is not None
    columns, scored = read_output(bytes(job.output_csv))
    assert columns[-10:] == list(bulk.OUTPUT_COLUMNS) and len(scored) == 30
    event = AuditEvent.objects.get(action="bulk_job.finished")
    assert event.after["scored"] == 30 and event.after["errors"] == 0
    assert event.after["policy_version"] == policy_current("b2b").label

    login(client, analyst)
    page = client.get(f"/scoring/bulk/{job.pk}/").content.decode()
    assert 'data-testid="job-status">Done<' in page and 'data-testid="download"' in page
    assert "hx-trigger" not in page  # nothing left to poll
    assert 'data-testid="job-result">30 scored: ' in page and "0 with an error" in page
    assert "bulk_job.created" in page and "bulk_job.finished" in page
    response = client.get(f"/scoring/bulk/{job.pk}/download")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="portfolio-scored.csv"'
    assert response.content == bytes(job.output_csv)


def test_a_french_excel_windows_1252_file_is_uploaded_scored_and_comes_back_in_utf8_for_excel(
    client, analyst, champion, enqueued
):
    """Excel's plain "CSV (séparateur : point-virgule)": Windows-1252, semicolons, decimal commas, CRLF."""
    rows = [
        {"entreprise": name, **row}
        for name, row in zip(
            ["Société Générale d'Électricité", "Bâtiment Œuvre"], portfolio_rows(2, seed=5), strict=True
        )
    ]
    text = csv_bytes(rows, delimiter=";", decimal_comma=True).decode()  # csv writes CRLF line ends
    data = text.encode("cp1252")
    assert data.decode("cp1252") == text and b"\xe9" in data  # é as one Windows-1252 byte: not UTF-8
    login(client, analyst)

    response = upload(client, data, name="portefeuille-été.csv")

    assert response.status_code == 302, response.content.decode()
    job = BulkScoringJob.objects.get()
    assert job.rows_total == 2
    bulk_job_run(job_id=job.pk)
    output = client.get(f"/scoring/bulk/{job.pk}/download").content
    assert output.startswith(codecs.BOM_UTF8)  # UTF-8 with a BOM, so that Excel shows the accents
    columns, scored = read_output(output, delimiter=";")
    assert columns[0] == "entreprise"
    assert [row["entreprise"] for row in scored] == ["Société Générale d'Électricité", "Bâtiment Œuvre"]
    policy = policy_current("b2b")
    for row, out in zip(rows, scored, strict=True):
        assert out["error"] == ""
        pd = float(out["probability_of_default"].replace(",", "."))
        assert abs(pd - expected_for(champion, policy, row)["pd"]) < 1e-9


def test_a_finished_job_is_not_run_again(job):
    bulk_job_run(job_id=job.pk)
    job.refresh_from_db()
    first_output, first_finished = bytes(job.output_csv), job.finished_at

    bulk_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (bytes(job.output_csv), job.finished_at) == (first_output, first_finished)
    assert AuditEvent.objects.filter(action="bulk_job.finished").count() == 1


def test_the_progress_moves_chunk_by_chunk_while_the_job_runs(job, monkeypatch):
    monkeypatch.setattr(bulk, "CHUNK_ROWS", 10)
    seen: list[tuple[str, int]] = []
    real_score_rows = bulk.score_rows

    def watching(rows, *args, **kwargs):
        current = BulkScoringJob.objects.get(pk=job.pk)
        seen.append((current.status, current.rows_done))
        return real_score_rows(rows, *args, **kwargs)

    monkeypatch.setattr(bulk, "score_rows", watching)
    bulk_job_run(job_id=job.pk)
    assert seen == [("running", 0), ("running", 10), ("running", 20)]
    job.refresh_from_db()
    assert (job.status, job.rows_done) == ("done", 30)


def test_the_job_page_returns_only_the_progress_fragment_to_htmx_polls(client, analyst, job):
    login(client, analyst)
    BulkScoringJob.objects.filter(pk=job.pk).update(status="running", rows_done=10)
    fragment = client.get(f"/scoring/bulk/{job.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in fragment and "<header" not in fragment
    assert '<progress value="10" max="30">' in fragment
    assert 'hx-trigger="every 1s"' in fragment


def test_a_job_whose_scoring_breaks_is_failed_with_its_error_shown(client, analyst, job, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(bulk, "score_rows", broken)
    bulk_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "failed" and "disk on fire" in job.error and job.finished_at is not None
    assert AuditEvent.objects.filter(action="bulk_job.failed", object_id=str(job.pk)).exists()
    login(client, analyst)
    page = client.get(f"/scoring/bulk/{job.pk}/").content.decode()
    assert 'data-testid="job-error"' in page and "disk on fire" in page
    assert client.get(f"/scoring/bulk/{job.pk}/download").status_code == 404


def test_the_upload_page_lists_the_users_jobs_in_a_bounded_number_of_queries(
    client, analyst, champion, django_assert_max_num_queries
):
    data = csv_bytes(portfolio_rows(3))
    bulk_job_create(user=analyst, segment="b2b", filename="first.csv", data=data)
    login(client, analyst)
    client.get("/scoring/bulk/")  # warm the session
    for i in range(10):
        bulk_job_create(user=analyst, segment="b2b", filename=f"file-{i}.csv", data=data)
    with django_assert_max_num_queries(8):
        response = client.get("/scoring/bulk/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "first.csv" in body and "file-9.csv" in body


# --- who may do what -------------------------------------------------------------------------------------


def test_an_auditor_can_follow_jobs_but_not_upload(client, auditor, job, enqueued):
    login(client, auditor)
    page = client.get("/scoring/bulk/")
    assert page.status_code == 200
    assert 'data-testid="upload-form"' not in page.content.decode()
    assert "portfolio.csv" in page.content.decode()
    assert upload(client, csv_bytes(portfolio_rows(3))).status_code == 403
    assert BulkScoringJob.objects.count() == 1 and enqueued == []
    assert client.get(f"/scoring/bulk/{job.pk}/").status_code == 200


def test_a_user_without_a_role_is_forbidden_every_bulk_page(client, outsider, job):
    login(client, outsider)
    assert client.get("/scoring/bulk/").status_code == 403
    assert upload(client, csv_bytes(portfolio_rows(3))).status_code == 403
    assert client.get(f"/scoring/bulk/{job.pk}/").status_code == 403
    assert client.get(f"/scoring/bulk/{job.pk}/download").status_code == 403
    assert BulkScoringJob.objects.count() == 1


def test_an_anonymous_visitor_is_sent_to_the_login_page(client, job):
    response = client.get(f"/scoring/bulk/{job.pk}/download")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_another_analysts_job_is_a_404_while_a_senior_analyst_sees_it(client, job, senior):
    bob = User.objects.create_user(username="bob.analyst", password=PASSWORD)
    bob.groups.add(Group.objects.get(name=ANALYST))
    bulk_job_run(job_id=job.pk)

    login(client, bob)
    assert client.get(f"/scoring/bulk/{job.pk}/").status_code == 404
    assert client.get(f"/scoring/bulk/{job.pk}/download").status_code == 404
    assert "portfolio.csv" not in client.get("/scoring/bulk/").content.decode()

    login(client, senior)
    assert client.get(f"/scoring/bulk/{job.pk}/").status_code == 200
    assert client.get(f"/scoring/bulk/{job.pk}/download").status_code == 200


@pytest.mark.parametrize("pk", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_an_unknown_job_is_a_404(client, analyst, pk):
    login(client, analyst)
    assert client.get(f"/scoring/bulk/{pk}/").status_code == 404
    assert client.get(f"/scoring/bulk/{pk}/download").status_code == 404


def test_a_job_still_running_has_nothing_to_download(client, analyst, job):
    login(client, analyst)
    assert client.get(f"/scoring/bulk/{job.pk}/download").status_code == 404


# --- bad uploads ---------------------------------------------------------------------------------------


def _too_many_rows() -> bytes:
    return b"id,revenue\n" + b"".join(b"%d,1000\n" % i for i in range(bulk.MAX_ROWS + 1))


@pytest.mark.parametrize(
    ("make_content", "name", "message"),
    [
        pytest.param(lambda: b"", "empty.csv", "The file is empty.", id="empty"),
        pytest.param(
            lambda: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "photo.png", "The file is not UTF-8 text", id="png"
        ),
        pytest.param(
            lambda: b"PK\x03\x04\x14\x00\x06\x00", "book.xlsx", "This is an Excel workbook, not a CSV file", id="xlsx"
        ),
        pytest.param(
            lambda: b"id,revenue\n", "header-only.csv", "The file has a header but no rows to score.", id="header-only"
        ),
        pytest.param(
            lambda: b"1,2,3\n4,5,6\n",
            "no-header.csv",
            "The header names none of the model&#x27;s features.",
            id="no-header",
        ),
        pytest.param(_too_many_rows, "huge.csv", "The file has more than 50,000 rows", id="too-many-rows"),
        pytest.param(
            lambda: b"id,revenue\n" + b"1,1000\n" * (bulk.MAX_BYTES // 7),
            "big.csv",
            "the limit is 20 MB",
            id="over-20-MB",
        ),
    ],
)
def test_a_file_that_cannot_be_scored_is_a_clear_form_error_and_no_job(
    client, analyst, champion, enqueued, make_content, name, message
):
    login(client, analyst)
    response = upload(client, make_content(), name=name)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not BulkScoringJob.objects.exists() and enqueued == []
    assert not AuditEvent.objects.filter(action="bulk_job.created").exists()


def test_a_segment_without_a_champion_is_a_clear_form_error(client, analyst, champion, enqueued):
    login(client, analyst)
    response = upload(client, csv_bytes(portfolio_rows(3)), segment="b2c")
    assert response.status_code == 400
    assert "No champion model for Individual (B2C) yet" in response.content.decode()
    assert not BulkScoringJob.objects.exists()


# --- with a real worker ------------------------------------------------------------------------------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_celery_worker_scores_an_uploaded_file_once_the_upload_commits(champion, analyst, celery_worker_process):
    job = bulk_job_create(user=analyst, segment="b2b", filename="portfolio.csv", data=csv_bytes(portfolio_rows(2500)))
    deadline = time.monotonic() + 90
    while job.status not in {"done", "failed"} and time.monotonic() < deadline:
        time.sleep(0.3)
        job.refresh_from_db(fields=["status", "rows_done", "error"])
    assert job.status == "done", (job.error, celery_worker_process.log_path.read_text()[-3000:])
    assert job.rows_done == job.rows_total == 2500
    job.refresh_from_db()
    assert len(read_output(bytes(job.output_csv))[1]) == 2500


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_analyst_uploads_a_file_watches_it_finish_and_downloads_the_scores(
    live_server, browser_page, analyst, champion, enqueued, tmp_path
):
    from playwright.sync_api import expect

    page = browser_page
    source = tmp_path / "portfolio.csv"
    source.write_bytes(csv_bytes(portfolio_rows(25)))

    page.goto(f"{live_server.url}/login/?next=/scoring/bulk/")
    page.get_by_label("Username").fill(analyst.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Bulk scoring")).to_be_visible()

    page.get_by_label("Segment").select_option("b2b")
    page.get_by_label("CSV file").set_input_files(str(source))
    page.get_by_role("button", name="Upload and score").click()
    expect(page.get_by_role("status")).to_have_text("portfolio.csv: 25 rows queued for scoring.")
    expect(page.get_by_test_id("job-status")).to_have_text("Queued")
    job = BulkScoringJob.objects.get()
    assert enqueued == [str(job.pk)]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "bulk-job-queued.png"), full_page=True)

    # No worker runs beside a live server: run the job here; the page, polling, sees it finish by itself.
    bulk_job_run(job_id=job.pk)
    expect(page.get_by_test_id("job-status")).to_have_text("Done")
    expect(page.get_by_test_id("rows-done")).to_have_text("25")
    assert page.locator("progress").evaluate("el => [el.value, el.max]") == [25, 25]
    expect(page.get_by_test_id("job-result")).to_contain_text("25 scored")
    page.screenshot(path=str(ARTIFACTS / "bulk-job.png"), full_page=True)

    with page.expect_download() as download_info:
        page.get_by_test_id("download").click()
    download = download_info.value
    assert download.suggested_filename == "portfolio-scored.csv"
    _, scored = read_output(Path(download.path()).read_bytes())
    assert len(scored) == 25 and all(row["decision"] for row in scored)

    page.get_by_role("link", name="← Bulk scoring").click()
    expect(page.get_by_test_id("jobs")).to_contain_text("portfolio.csv")
    page.screenshot(path=str(ARTIFACTS / "bulk-upload.png"), full_page=True)
    assert page.broken_resources == []
