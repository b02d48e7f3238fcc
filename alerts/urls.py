"""The back-office's alert inbox and, for admins, the partners' webhook endpoints."""

from django.urls import path

from . import views

app_name = "alerts"

urlpatterns = [
    path("", views.inbox_page, name="inbox"),
    path("acknowledge/", views.alerts_acknowledge, name="acknowledge-bulk"),
    path("<int:pk>/acknowledge/", views.alert_acknowledge, name="acknowledge"),
    path("companies/<str:siren>/limit/", views.company_limit, name="company-limit"),
    path("companies/<str:siren>/events/", views.company_event_record, name="company-event"),
    path("webhooks/", views.webhook_list, name="webhooks"),
    path("webhooks/<int:pk>/", views.webhook_detail, name="webhook"),
    path("webhooks/<int:pk>/pause/", views.webhook_pause, name="webhook-pause"),
    path("webhooks/<int:pk>/resume/", views.webhook_resume, name="webhook-resume"),
    path(
        "webhooks/<int:pk>/deliveries/<int:delivery_pk>/redeliver/",
        views.webhook_redeliver,
        name="webhook-redeliver",
    ),
]
