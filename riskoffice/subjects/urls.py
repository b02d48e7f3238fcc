from django.urls import path

from . import backoffice

app_name = "subjects"
urlpatterns: list = [
    # Access and erasure requests, recorded and answered by admins.
    path("", backoffice.request_list, name="requests"),
    path("access/", backoffice.access_new, name="access-new"),
    path("erasure/", backoffice.erasure_new, name="erasure-new"),
    path("erasure/<int:pk>/", backoffice.erasure_detail, name="erasure"),
]
