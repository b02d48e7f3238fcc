"""EXPLAIN ANALYZE of the queries the pages and endpoints make, built by the project's own code.

Run with `manage.py shell < explain_footprint.py` against a database filled by seed_big.sql.
Prints, per query: the plan's nodes that read tables (index or seq scan), the execution time.
"""

import re
import time
from datetime import timedelta

from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from alerts.models import WebhookDelivery
from alerts.selectors import webhook_endpoints_for_client
from alerts.services import due_delivery_ids  # noqa: F401  (the query is rebuilt below)
from dossiers import selectors
from dossiers.api import score_list_queryset
from dossiers.models import Dossier
from riskoffice.audit import audit_history
from riskoffice.models import ApiClient, AuditEvent
from scoring.models import Score
from scoring.selectors import statements_for_user

print("load average:", open("/proc/loadavg").read().split()[:3])
user = User.objects.get(username="analyst0")
big = ApiClient.objects.get(pk=1)  # the busiest client: about 10 % of all dossiers
small = ApiClient.objects.get(pk=100)
ORDER = ("-created_at", "-id")  # ScoreCursorPagination.ordering


def show(name, queryset):
    plan = queryset.explain(analyze=True, buffers=True)
    nodes = [
        line.strip()
        for line in plan.splitlines()
        if re.search(r"Scan|Sort Method|Incremental Sort|Aggregate|Hash Join|Nested Loop|Limit", line)
    ]
    m = re.search(r"Execution Time: ([0-9.]+) ms", plan)
    print(f"\n### {name}  ({m.group(1) if m else '?'} ms)")
    for n in nodes:
        print("   ", re.sub(r"\(cost=[^)]*\)\s*", "", n)[:170])


def sql_explain(name, sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    m = re.search(r"Execution Time: ([0-9.]+) ms", plan)
    print(f"\n### {name}  ({m.group(1) if m else '?'} ms)")
    for line in plan.splitlines():
        if re.search(r"Scan|Sort|Aggregate|Limit|Unique", line):
            print("   ", re.sub(r"\(cost=[^)]*\)\s*", "", line.strip())[:170])


queue = selectors.dossiers_for_user(user).exclude(origin=Dossier.Origin.HISTORY)
show("queue, page 1 (50 newest, history excluded)", queue[:50])
show("queue, page 40", queue[1950:2000])
show("queue, status=failed", queue.filter(status="failed")[:50])
show("queue, status=pending", queue.filter(status="pending")[:50])
show("queue, status=scored", queue.filter(status="scored")[:50])


def explain_run(name, fn):
    """EXPLAIN each SELECT that fn() runs, as Django sent it (parameters in place)."""
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        fn()
    for i, query in enumerate(q["sql"] for q in captured.captured_queries if q["sql"].startswith("SELECT")):
        sql_explain(f"{name} [{i + 1}]", query)


explain_run("queue: the paginator's COUNT(*)", lambda: queue.count())
# the scores of a page's dossiers: the prefetch
ids = list(queue.values_list("pk", flat=True)[:50])
show("queue: the page's scores (prefetch)", Score.objects.filter(dossier_id__in=ids).order_by("-created_at"))

for label, client in (("busiest client", big), ("small client", small)):
    show(f"GET /scores, {label}", score_list_queryset(client, {}).order_by(*ORDER)[:51])
show("GET /scores?status=failed, busiest", score_list_queryset(big, {"status": "failed"}).order_by(*ORDER)[:51])
show("GET /scores?status=pending, busiest", score_list_queryset(big, {"status": "pending"}).order_by(*ORDER)[:51])
one_month = {
    "created_after": timezone.now() - timedelta(days=200),
    "created_before": timezone.now() - timedelta(days=170),
}
show(
    "GET /scores?created_after&created_before (one month), busiest",
    score_list_queryset(big, one_month).order_by(*ORDER)[:51],
)
edge = Dossier.objects.filter(partner_id=big.partner_id).order_by(*ORDER).values_list("created_at", flat=True)[5000]
show(
    "GET /scores?cursor=… (page 100), busiest",
    score_list_queryset(big, {}).filter(created_at__lt=edge).order_by(*ORDER)[:51],
)
siren = (
    Dossier.objects.filter(partner_id=big.partner_id, company__isnull=False)
    .values_list("company__siren", flat=True)
    .first()
)
show("GET /scores?siren=, busiest", score_list_queryset(big, {"siren": siren}).order_by(*ORDER)[:51])
reference = (
    Dossier.objects.filter(partner_id=big.partner_id, individual__isnull=False)
    .values_list("individual__reference", flat=True)
    .first()
)
show("GET /scores?reference=, busiest", score_list_queryset(big, {"reference": reference}).order_by(*ORDER)[:51])
show(
    "GET /scores?reference= scoped to the partner's individuals (proposed)",
    score_list_queryset(big, {"reference": reference})
    .filter(individual__partner_id=big.partner_id)
    .order_by(*ORDER)[:51],
)
show("GET /scores?status=failed, small client", score_list_queryset(small, {"status": "failed"}).order_by(*ORDER)[:51])
show("GET /scores?status=scored, small client", score_list_queryset(small, {"status": "scored"}).order_by(*ORDER)[:51])
dossier = (
    Dossier.objects.filter(partner_id=big.partner_id, status="scored", company__isnull=False)
    .defer("bank_tokens_json")
    .first()
)
show("GET /scores/{id}", selectors.dossiers_for_client(big).filter(pk=dossier.pk))
show("dossier page: audit history", audit_history(dossier))
show("dossier page: statements", statements_for_user(user).filter(company_id=dossier.company_id)[:10])
show("dossier page: overrides", dossier.overrides.select_related("decided_by"))
show(
    "sandbox allowance: the client's dossiers in its window",
    Dossier.objects.filter(api_client=big, created_at__gt=timezone.now() - timedelta(days=14)).order_by("-created_at"),
)
show("webhooks: the partner's endpoints", webhook_endpoints_for_client(big))
show(
    "webhooks: due deliveries",
    WebhookDelivery.objects.filter(
        status="pending",
        next_attempt_at__lte=timezone.now(),
        endpoint__is_active=True,
        endpoint__paused_at__isnull=True,
    )
    .order_by("next_attempt_at")
    .values_list("pk", flat=True)[:500],
)
show("webhooks: an endpoint's deliveries (cascade on delete)", WebhookDelivery.objects.filter(endpoint_id=1))

from django.db.models import Count, Q  # noqa: E402
from django.db.models.functions import TruncMonth  # noqa: E402

from dossiers.usage import monthly_usage  # noqa: E402

today = timezone.localdate()
for months in (12, 1):
    first = (today.replace(day=1) - timedelta(days=31 * (months - 1))).replace(day=1)
    start = timezone.make_aware(timezone.datetime(first.year, first.month, 1))
    requests = (
        Dossier.objects.filter(api_client__isnull=False, created_at__gte=start)
        .annotate(month=TruncMonth("created_at"))
        .values("month", "api_client")
        .annotate(requested=Count("id"), failed=Count("id", filter=Q(status="failed")))
    )
    scores = (
        Score.objects.filter(dossier__api_client__isnull=False, created_at__gte=start)
        .annotate(month=TruncMonth("created_at"))
        .values("month", "dossier__api_client")
        .annotate(scores=Count("id"))
    )
    show(f"usage, {months} month(s): requests", requests)
    show(f"usage, {months} month(s): scores", scores)
    t = time.perf_counter()
    monthly_usage(first, today)
    print(f"    monthly_usage({months} months): {1000 * (time.perf_counter() - t):.0f} ms")

show(
    "admin audit trail: page 1",
    AuditEvent.objects.select_related("actor_user", "actor_client__partner", "actor_client__application").order_by(
        "-at", "-id"
    )[:100],
)
sql_explain("admin audit trail: COUNT(*)", 'SELECT COUNT(*) FROM "riskoffice_auditevent"')
sql_explain(
    "admin audit trail: list_filter action (DISTINCT)",
    'SELECT DISTINCT "action" FROM "riskoffice_auditevent" ORDER BY "action"',
)
sql_explain(
    "admin audit trail: list_filter object_type (DISTINCT)",
    'SELECT DISTINCT "object_type" FROM "riskoffice_auditevent" ORDER BY "object_type"',
)
show(
    "admin audit trail: one object's events (search object_id)",
    AuditEvent.objects.filter(object_id__icontains=str(dossier.pk)).order_by("-at", "-id")[:100],
)
