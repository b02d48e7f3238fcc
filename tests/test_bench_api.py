"""The load benchmark's arithmetic (scripts/bench_api.py): its SIRENs, percentiles, step figures and steps.

The benchmark itself starts the whole production stack and takes minutes; these specifications check
only what it computes, with no server and no timing.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import pytest

from dossiers.identifiers import siren_error

BENCH_PATH = Path(__file__).resolve().parent.parent / "scripts" / "bench_api.py"
_spec = importlib.util.spec_from_file_location("bench_api", BENCH_PATH)
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_api"] = bench  # dataclasses look their module up by name
_spec.loader.exec_module(bench)


def test_the_benchmark_requests_distinct_luhn_valid_sirens():
    """Every SIREN the driver sends is 9 digits, passes the checksum the API applies, and none repeats."""
    generated = bench.sirens(bench.FIRST_SIREN_BASE, 5000)

    assert len(set(generated)) == 5000
    assert [siren for siren in generated if siren_error(siren)] == []


def test_its_luhn_key_is_the_one_the_api_expects():
    """The driver computes the key itself (it imports nothing of the project): it agrees with python-stdnum."""
    from stdnum import luhn

    for body in ("00000000", "55210055", "73282932", "99999999", "70001234"):
        assert bench.luhn_check_digit(body) == luhn.calc_check_digit(body)
    assert bench.siren_for(55210055) == "552100554"


def test_a_siren_base_has_eight_digits():
    with pytest.raises(ValueError):
        bench.siren_for(123_456_789)


def test_percentiles_are_nearest_rank():
    """p50 of 1..100 is 50, p99 is 99, p100 the largest; one value is every percentile; none gives None."""
    values = list(range(100, 0, -1))  # order does not matter

    assert bench.percentile(values, 50) == 50
    assert bench.percentile(values, 95) == 95
    assert bench.percentile(values, 99) == 99
    assert bench.percentile(values, 100) == 100
    assert bench.percentile([0.25], 99) == 0.25
    assert bench.percentile([], 50) is None
    assert bench.percentile([3.0, 1.0], 50) == 1.0


def test_step_figures_leave_out_the_warm_up_and_count_throughput_inside_the_window():
    """Time-to-score and POST latency cover dossiers requested in the window; scored/s those scored in it."""
    Dossier = bench.Dossier
    dossiers = [
        Dossier(id="warm-up", started=100.5, post_seconds=9.0, ended=101.5, status="scored"),
        Dossier(id="a", started=101.0, post_seconds=0.01, ended=101.2, status="scored"),
        Dossier(id="b", started=102.0, post_seconds=0.03, ended=102.5, status="scored"),
        Dossier(id="late", started=104.5, post_seconds=0.02, ended=106.0, status="scored"),
        Dossier(id="c", started=103.0, post_seconds=0.02, ended=None, status=None),
        Dossier(id=None, started=103.5),  # the POST failed
    ]

    figures = bench.step_figures(dossiers, begin=101.0, end=105.0)

    assert figures["dossiers"] == 5
    assert figures["scored"] == 3
    assert figures["unfinished"] == 1
    assert figures["scored_per_second"] == round(3 / 4, 1)  # warm-up's, a's and b's scores fall in the window
    assert figures["time_to_score_s"]["max"] == 1.5  # "late" counts: it was requested in the window
    assert figures["time_to_score_s"]["p50"] == 0.5
    assert figures["post_latency_s"]["p99"] == 0.03  # the warm-up's 9 s POST is left out


def test_steps_are_mode_and_concurrency():
    steps = bench.parse_steps("wait:20, poll:500")

    assert [(s.mode, s.concurrency) for s in steps] == [("wait", 20), ("poll", 500)]
    for wrong in ("push:20", "poll:", "poll:0", "wait:x", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            bench.parse_steps(wrong)


def test_the_default_run_is_both_modes_at_20_100_and_500_partners():
    args = bench.parse_args([])

    assert sorted(step.label for step in args.steps) == sorted(
        ["wait:20", "poll:20", "poll:100", "poll:500", "wait:100", "wait:500"]
    )


def test_a_throttled_client_waits_as_long_as_retry_after_says_within_bounds():
    assert bench._retry_after("2") == 2.0
    assert bench._retry_after(None) == 1.0
    assert bench._retry_after("soon") == 1.0
    assert bench._retry_after("3600") == 30.0


def test_a_dossier_created_after_its_partner_gave_up_is_reported_but_not_lost():
    """The check tells a partner's timeout (created, never answered) from a lost or twice-scored dossier."""
    gave_up = {"ok": False, "none_lost": True, "created_not_answered": 3}
    lost = {"ok": False, "none_lost": False, "created": 5, "statuses": {"scored": 4, "pending": 1}}

    assert bench._check({"ok": True, "none_lost": True}) == "OK"
    assert bench._check(gave_up) == "none lost; 3 created after the partner gave up"
    assert bench._check(lost).startswith("NOT OK")


def test_the_worker_kill_report_covers_the_dossiers_requested_before_the_kill_and_not_yet_scored():
    Dossier = bench.Dossier
    dossiers = [
        Dossier(id="done-before", started=0.0, ended=4.0, status="scored"),
        Dossier(id="held", started=4.5, ended=30.0, status="scored"),
        Dossier(id="queued", started=4.9, ended=12.0, status="scored"),
        Dossier(id="after", started=6.0, ended=7.0, status="scored"),
        Dossier(id=None, started=4.0),  # its POST failed: nothing was in flight
    ]
    verification = {"statuses": {"scored": 4}, "without_score": 0, "scored_twice": 0}

    report = bench.kill_report({"killed_at": 5.0, "restarted_at": 8.0}, dossiers, verification)

    assert report["in_flight"] == 2
    assert report["in_flight_time_to_score_s"]["max"] == 25.5
    assert report["restart_after_s"] == 3.0
    assert report["lost"] == report["scored_twice"] == 0


def test_the_worker_comparison_averages_each_count_over_its_runs_and_divides_by_the_first():
    """Interleaved runs (1,2,1,2) are averaged per worker count, so that drift in the load weighs on both."""
    outcomes = [
        {"celery_workers": 1, "scored_per_second": 10.0, "stored_per_second": 11.0},
        {"celery_workers": 2, "scored_per_second": 18.0, "stored_per_second": 20.0},
        {"celery_workers": 1, "scored_per_second": 12.0, "stored_per_second": 11.0},
        {"celery_workers": 2, "scored_per_second": 20.0, "stored_per_second": 24.0},
    ]

    one, two = bench.throughput_by_workers(outcomes)

    assert (one["celery_workers"], one["runs"], one["scored_per_second"]) == (1, 2, 11.0)
    assert (two["scored_per_second"], two["scored_per_second_ratio"]) == (19.0, 1.73)
    assert two["stored_per_second_ratio"] == 2.0
