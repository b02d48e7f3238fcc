from django.urls import path

from .views import detail, queue

app_name = "dossiers"
urlpatterns = [
    path("", queue.queue, name="queue"),
    # Screens beside the queue (company, portfolio, imports) go above the dossier catch-all.
    path("<str:pk>/", detail.dossier_detail, name="detail"),
    path("<str:pk>/override", detail.dossier_override, name="override"),
    path("<str:pk>/outcome", detail.dossier_outcome, name="outcome"),
    path("<str:pk>/statement", detail.dossier_statement, name="statement"),
]
