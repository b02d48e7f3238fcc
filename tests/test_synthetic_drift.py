"""The synthetic generator with drift, and the drift benchmark that runs on it (scripts/bench_drift.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scoring.model.synthetic import (
    generate_monthly_applications,
    generate_portfolio,
    true_pd,
    true_pd_drifted,
)

ROOT = Path(__file__).resolve().parent.parent


def test_without_drift_the_book_is_the_one_it_always_was():
    book = generate_portfolio(300, seed=5)
    # Pinned from the generator as it was before drift existed: other tests and benchmarks rely on these books.
    assert (book[0][0].siren, book[-1][0].siren) == ("703711044", "341359180")
    assert [i for i, (_, _, defaulted) in enumerate(book) if defaulted] == [54, 58, 81, 159, 192, 224, 251, 294]
    assert sum(pd for _, pd, _ in book) == pytest.approx(10.995301, abs=1e-6)
    assert [(c.siren, p, d) for c, p, d in generate_portfolio(300, seed=5, drift_from=None)] == [
        (c.siren, p, d) for c, p, d in book
    ]


def test_the_drifted_book_keeps_every_row_before_the_drift_point_and_every_company_after_it():
    plain = generate_portfolio(600, seed=5)
    drifted = generate_portfolio(600, seed=5, drift_from=400)
    assert [(c.siren, p, d) for c, p, d in drifted[:400]] == [(c.siren, p, d) for c, p, d in plain[:400]]
    assert [c.features() for c, _, _ in drifted[400:]] == [c.features() for c, _, _ in plain[400:]]


def test_after_the_drift_point_defaults_follow_the_drifted_risk_function():
    plain = generate_portfolio(600, seed=5)
    drifted = generate_portfolio(600, seed=5, drift_from=400)
    for (company, pd_after, _), (_, pd_before, _) in zip(drifted[400:], plain[400:], strict=True):
        assert pd_after == true_pd_drifted(company.features())
        assert pd_before == true_pd(company.features())
    changed = sum(abs(a - b) > 1e-9 for (_, a, _), (_, b, _) in zip(drifted[400:], plain[400:], strict=True))
    assert changed == 200  # the level shift moves every PD
    # The downturn raises risk, and reorders it: the PDs after the drift do not rank the files as before.
    after = [p for _, p, _ in drifted[400:]]
    before = [p for _, p, _ in plain[400:]]
    assert sum(after) > 1.5 * sum(before)
    rank_after = sorted(range(200), key=after.__getitem__)
    rank_before = sorted(range(200), key=before.__getitem__)
    assert rank_after != rank_before


def test_monthly_applications_are_month_stamped_and_drift_from_the_drift_month():
    applications = generate_monthly_applications(100, first_month=-2, last_month=3, drift_month=1, seed=9)
    assert [a.month for a in applications] == [m for m in range(-2, 4) for _ in range(100)]
    for application in applications:
        features = application.company.features()
        expected = true_pd_drifted(features) if application.month >= 1 else true_pd(features)
        assert application.true_pd == expected
    # The same book as the undrifted generator's, month by month.
    plain = generate_portfolio(600, seed=9)
    assert [a.company.siren for a in applications] == [c.siren for c, _, _ in plain]
    assert [a.defaulted for a in applications[:300]] == [d for _, _, d in plain[:300]]


def test_the_drift_benchmark_runs_on_a_small_book_and_prints_its_table():
    completed = subprocess.run(
        [sys.executable, "scripts/bench_drift.py", "--per-month", "300", "--window", "3", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert "month | applications | defaults | AUC frozen | AUC retrained | AUC oracle |    gap" in lines[3]
    assert any(line.startswith("Goal: retrained within 0.02 AUC of the oracle from month 8 on:") for line in lines)
    result = json.loads(lines[-1])
    assert [row["month"] for row in result["months"]] == list(range(12))
    assert all(row["applications"] == 300 for row in result["months"])
    for row in result["months"]:
        assert 0.5 <= row["auc_oracle"] <= 1 and 0 <= row["auc_frozen"] <= 1 and 0 <= row["auc_retrained"] <= 1
    # Frozen and retrained share their first champion: month 0 scores the same, then only one of them learns.
    assert result["months"][0]["auc_frozen"] == result["months"][0]["auc_retrained"]
    assert len(result["retraining"]) == 12 and all(step["promoted"] for step in result["retraining"][1:])
    assert isinstance(result["goal"]["met"], bool)
