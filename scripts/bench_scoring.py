"""Time in-process scoring of one dossier with a 300-tree, depth-4 model: p50 / p99 / mean and throughput.

    .venv/bin/python scripts/bench_scoring.py [--n 2000] [--json]

Each timed scoring is the hot path of ``score_compute`` without its I/O: a feature
dict → encoded row → XGBoost exact TreeSHAP (the PD is the sigmoid of their sum)
→ top factors → points and band → decision policy (an unsaved PolicyVersion with
the default thresholds). The same run times XGBoost alone on the same rows —
``inplace_predict`` and ``predict(pred_contribs=True)`` on a prebuilt DMatrix,
interleaved with the full path so that noise from other processes hits all three
alike — and prints the ratio. No database is used; Django is set up with a
throwaway var/ directory.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from importlib import import_module
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "riskoffice.settings")
if "RISKOFFICE_VAR_DIR" not in os.environ:  # a throwaway var/ (Django's dev secrets land there), removed at exit
    os.environ["RISKOFFICE_VAR_DIR"] = tempfile.mkdtemp(prefix="riskoffice-bench-")
    atexit.register(shutil.rmtree, os.environ["RISKOFFICE_VAR_DIR"], True)

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
import xgboost as xgb  # noqa: E402

from scoring.model import engine  # noqa: E402
from scoring.model.features import CATALOGUE, FEATURE_NAMES  # noqa: E402
from scoring.model.synthetic import generate_portfolio  # noqa: E402
from scoring.model.training import train_model  # noqa: E402
from scoring.models import PolicyVersion  # noqa: E402
from scoring.policy.apply import policy_apply  # noqa: E402
from scoring.policy.scale import band_for, score_for  # noqa: E402

TREES, DEPTH, TRAIN_ROWS, WARMUP = 300, 4, 20000, 200


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 4),
        "p99_ms": round(float(np.percentile(ms, 99)), 4),
        "mean_ms": round(float(ms.mean()), 4),
        "max_ms": round(float(ms.max()), 4),
    }


def machine() -> dict[str, str | int | float]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count() or 0,
        "python": platform.python_version(),
        "xgboost": xgb.__version__,
        "numpy": np.__version__,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="Scorings to time (default 2000).")
    parser.add_argument("--json", action="store_true", help="End with the figures as one JSON object.")
    args = parser.parse_args()

    started = time.perf_counter()
    portfolio = generate_portfolio(TRAIN_ROWS + args.n, seed=21)
    rows = [company.features() for company, _, _ in portfolio]
    labels = [int(defaulted) for _, _, defaulted in portfolio]
    amounts = [company.requested_amount for company, _, _ in portfolio]
    naf_codes = [company.naf_code for company, _, _ in portfolio]
    dates = [f"{i:09d}" for i in range(len(rows))]
    trained = train_model(
        rows[:TRAIN_ROWS],
        labels[:TRAIN_ROWS],
        dates[:TRAIN_ROWS],
        feature_names=FEATURE_NAMES,
        categorical={f.name for f in CATALOGUE if f.categorical},
        params={"max_depth": DEPTH},
        fixed_rounds=TREES,
    )
    loaded = engine.model_from_trained(trained)
    assert loaded.booster.num_boosted_rounds() == TREES
    defaults = import_module("scoring.migrations.0002_default_policies").DEFAULTS["b2b"]
    policy = PolicyVersion(segment="b2b", version=1, is_current=True, **defaults)  # never saved
    prepared = time.perf_counter() - started

    dossiers = rows[TRAIN_ROWS:]
    matrices = [engine.encode_rows(loaded.feature_names, loaded.categories, [f]) for f in dossiers]
    dmatrices = [engine.dmatrix(loaded, m) for m in matrices]

    def score(i: int) -> None:
        features = dossiers[i]
        explanation = engine.explain_one(loaded, features)
        pd = explanation.probability_of_default
        engine.factors_from(explanation, features)
        score_for(pd, "b2b")
        band_for(pd)
        policy_apply(policy, pd=pd, features=features, requested_amount=amounts[i], naf_code=naf_codes[i])

    def predict(i: int) -> None:
        loaded.booster.inplace_predict(matrices[i])

    def contribs(i: int) -> None:
        loaded.booster.predict(dmatrices[i], pred_contribs=True)

    timed = {"full": score, "predict": predict, "contribs": contribs}
    samples: dict[str, list[int]] = {name: [] for name in timed}
    for i in range(min(WARMUP, args.n)):
        for fn in timed.values():
            fn(i)
    gc.collect()
    clock = time.perf_counter_ns
    for i in range(args.n):
        for name, fn in timed.items():
            t0 = clock()
            fn(i)
            samples[name].append(clock() - t0)

    # The PD of the timed path is the booster's own (uncalibrated model): a cheap check that it is real work.
    check = engine.explain_one(loaded, dossiers[0]).probability_of_default
    assert abs(check - float(loaded.booster.inplace_predict(matrices[0])[0])) < 1e-6

    full, pred, contrib = (percentiles(samples[name]) for name in ("full", "predict", "contribs"))
    xgb_p50 = pred["p50_ms"] + contrib["p50_ms"]
    result = {
        "n": args.n,
        "trees": TREES,
        "max_depth": DEPTH,
        "features": len(FEATURE_NAMES),
        "scoring": full,
        "xgboost_predict": pred,
        "xgboost_pred_contribs": contrib,
        "throughput_per_s_one_thread": round(1000 / statistics.fmean(np.asarray(samples["full"]) / 1e6), 1),
        "ratio_full_to_pred_contribs_p50": round(full["p50_ms"] / contrib["p50_ms"], 2),
        "ratio_full_to_predict_plus_contribs_p50": round(full["p50_ms"] / xgb_p50, 2),
        "goal_p99_le_3ms": full["p99_ms"] <= 3.0,
        "machine": machine(),
        "setup_seconds": round(prepared, 1),
    }

    print(
        f"In-process scoring of one dossier, {TREES} trees of depth {DEPTH}, {len(FEATURE_NAMES)} features, "
        f"n={args.n} (setup {prepared:.1f} s)"
    )
    m = result["machine"]
    print(
        f"Machine: {m['cpu']}, {m['cores']} cores, load {m['load_average_1m']}; "
        f"Python {m['python']}, XGBoost {m['xgboost']}"
    )
    print(f"{'':44}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}{'max ms':>9}")
    for label, figures in (
        ("features → PD → SHAP → factors → policy", full),
        ("XGBoost inplace_predict alone", pred),
        ("XGBoost pred_contribs alone (DMatrix built)", contrib),
    ):
        print(
            f"{label:44}{figures['p50_ms']:>9.3f}{figures['p99_ms']:>9.3f}{figures['mean_ms']:>9.3f}"
            f"{figures['max_ms']:>9.3f}"
        )
    print(
        f"Throughput: {result['throughput_per_s_one_thread']:.0f} scorings/s on one thread. "
        f"Full path / pred_contribs (p50): {result['ratio_full_to_pred_contribs_p50']:.2f}; "
        f"/ (predict + pred_contribs): {result['ratio_full_to_predict_plus_contribs_p50']:.2f}."
    )
    print(f"Goal p99 ≤ 3 ms: {'met' if result['goal_p99_le_3ms'] else 'NOT met'} ({full['p99_ms']:.3f} ms).")
    if args.json:
        print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
