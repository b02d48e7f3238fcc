"""The back-office's alert inbox and, for admins, the partners' webhook endpoints."""

from django.urls import path  # noqa: F401

app_name = "alerts"

urlpatterns: list = []
