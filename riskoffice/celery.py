import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "riskoffice.settings")

app = Celery("riskoffice")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Tasks that live beside the work they run, inside an app's sub-package.
app.autodiscover_tasks(["scoring.bulk", "scoring.portfolio", "scoring.model"])


@worker_ready.connect
def _first_heartbeat(sender, **kwargs) -> None:
    """A heartbeat through the broker as soon as a worker is up: /readyz need not wait for beat's first tick."""
    sender.app.send_task("riskoffice.tasks.heartbeat")
