"""GET /api/v1/scores/{id}'s reads, with the booster joined (HEAD) and deferred (this change); p50/p99 in ms."""

import os
import statistics
import time

from django.db.models import Prefetch

from dossiers import selectors
from dossiers.models import Dossier
from scoring.models import ModelVersion, Score

print("load average:", open("/proc/loadavg").read().split()[:3])
pk = Dossier.objects.filter(partner_id=1, status="scored").values_list("pk", flat=True).first()


def head():
    scores = Score.objects.select_related("model_version", "policy_version").order_by("-created_at")
    d = (
        Dossier.objects.filter(partner_id=1)
        .select_related("company", "individual", "partner")
        .prefetch_related(Prefetch("scores", queryset=scores, to_attr="scores_newest_first"))
        .defer("bank_tokens_json")
        .get(pk=pk)
    )
    getattr(d, "outcome", None)
    return d


def new():
    d = Dossier.objects.filter(partner_id=1)
    d = selectors._with_latest_score(d).defer("bank_tokens_json").get(pk=pk)
    getattr(d, "outcome", None)
    return d


def interleaved(fns, n=300):
    """Each iteration runs every variant once, so load changes hit them alike."""
    samples = {name: [] for name in fns}
    for _ in range(20):
        for fn in fns.values():
            fn()
    for _ in range(n):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            samples[name].append(1000 * (time.perf_counter() - t))
    return {name: (statistics.median(v), sorted(v)[int(0.99 * len(v)) - 1]) for name, v in samples.items()}


def page(variant):
    """A page of 50 of the partner's dossiers with their latest scores (the queue, GET /api/v1/scores)."""

    def run():
        if variant == "head":
            scores = Score.objects.select_related("model_version", "policy_version").order_by("-created_at")
            qs = (
                Dossier.objects.filter(partner_id=1)
                .select_related("company", "individual", "partner")
                .prefetch_related(Prefetch("scores", queryset=scores, to_attr="scores_newest_first"))
            )
        else:
            qs = selectors._with_latest_score(Dossier.objects.filter(partner_id=1))
        return list(qs.defer("bank_tokens_json").order_by("-created_at")[:50])

    return run


for size in (100_000, 1_000_000):
    ModelVersion.objects.filter(pk=1).update(booster_ubj=os.urandom(size))
    result = interleaved(
        {
            "GET /scores/{id}, HEAD": head,
            "GET /scores/{id}, this change": new,
            "50-row page, HEAD": page("head"),
            "50-row page, this change": page("new"),
        },
        n=100,
    )
    for name, (p50, p99) in result.items():
        print(f"booster {size // 1000:5d} kB  {name:32s} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms")
print("load average:", open("/proc/loadavg").read().split()[:3])
