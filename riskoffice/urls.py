from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from oauth2_provider import views as oauth2_views

from alerts import api as alerts_api
from alerts import monitoring_api
from dossiers import api as dossiers_api

from . import health, openapi, twofactor
from .api import problem_response
from .subjects import api as subjects_api
from .throttling import ThrottledTokenView

api_patterns = (
    [
        path("scores", dossiers_api.ScoreListCreate.as_view(), name="scores"),
        path("scores/<str:pk>", dossiers_api.ScoreDetail.as_view(), name="score-detail"),
        path("scores/<str:pk>/outcome", dossiers_api.ScoreOutcome.as_view(), name="score-outcome"),
        path("scores/<str:pk>/human-review", subjects_api.ScoreHumanReview.as_view(), name="score-human-review"),
        path("events", alerts_api.EventCreate.as_view(), name="events"),
        path("webhooks", alerts_api.EndpointListCreate.as_view(), name="webhooks"),
        path("webhooks/<int:pk>", alerts_api.EndpointDetail.as_view(), name="webhook-detail"),
        # Webhooks: rotation, pause, the delivery log, redelivery.
        path("webhooks/<int:pk>/rotate-secret", alerts_api.EndpointRotateSecret.as_view(), name="webhook-rotate"),
        path("webhooks/<int:pk>/pause", alerts_api.EndpointPause.as_view(), name="webhook-pause"),
        path("webhooks/<int:pk>/resume", alerts_api.EndpointResume.as_view(), name="webhook-resume"),
        path("webhooks/<int:pk>/deliveries", alerts_api.DeliveryList.as_view(), name="webhook-deliveries"),
        path(
            "webhooks/<int:pk>/deliveries/<str:message_id>",
            alerts_api.DeliveryDetail.as_view(),
            name="webhook-delivery",
        ),
        path(
            "webhooks/<int:pk>/deliveries/<str:message_id>/redeliver",
            alerts_api.DeliveryRedeliver.as_view(),
            name="webhook-redeliver",
        ),
        # Monitoring: the partner's watch list.
        path("monitoring", monitoring_api.WatchListCreate.as_view(), name="monitoring"),
        path("monitoring/<str:siren>", monitoring_api.WatchDetail.as_view(), name="monitoring-detail"),
    ],
    "api",
)

urlpatterns = [
    path("", lambda request: redirect("dossiers:queue")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # Only the token endpoints: partners use client credentials, nobody authorises apps interactively.
    path("o/token/", ThrottledTokenView.as_view(), name="oauth2_token"),
    path("o/revoke_token/", oauth2_views.RevokeTokenView.as_view(), name="oauth2_revoke_token"),
    # The API's contract, public, outside the "api" namespace: no token, and no place in the permission matrix.
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", openapi.SwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/docs/redoc/", openapi.RedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("api/v1/", include(api_patterns)),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("two-factor/", twofactor.two_factor, name="two-factor"),
    path("two-factor/verify/", twofactor.two_factor_verify, name="two-factor-verify"),
    path("dossiers/", include("dossiers.urls")),
    path("scoring/", include("scoring.urls")),
    path("privacy/", include("riskoffice.subjects.urls")),
    path("register/", include("riskoffice.register.urls")),
    path("access-log/", include("riskoffice.accesslog.urls")),
    path("alerts/", include("alerts.urls")),
    path("admin/", admin.site.urls),
    # The language switch (POST to set_language): a cookie, read by riskoffice.middleware.LocaleMiddleware.
    path("i18n/", include("django.conf.urls.i18n")),
]


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return problem_response(request, 404)
    return render(request, "404.html", status=404)


def handler500(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return problem_response(request, 500)
    return render(request, "500.html", status=500)


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "403.html", status=403)
