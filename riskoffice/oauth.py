"""The token endpoint's rules for partner clients, on top of django-oauth-toolkit's validator.

- Only the client-credentials grant, for applications registered for it (the server class,
  oauthlib's BackendApplicationServer, knows no other grant; this validator also refuses an
  application made for another grant in the admin).
- A disabled API client (or an application with no API client) cannot authenticate.
- An unknown client id costs the same hashing as a wrong secret, so the answer's timing does not
  tell which client ids exist.
"""

from __future__ import annotations

from functools import lru_cache

from django.contrib.auth.hashers import check_password, make_password
from oauth2_provider.models import Application
from oauth2_provider.oauth2_validators import OAuth2Validator

from .models import ApiClient


@lru_cache(maxsize=1)
def _decoy_hash() -> str:
    return make_password("a secret no client has")


def _spend_a_secret_check() -> None:
    check_password("not the secret", _decoy_hash())


class PartnerOAuth2Validator(OAuth2Validator):
    def _load_application(self, client_id, request):
        application = super()._load_application(client_id, request)
        if application is None:
            _spend_a_secret_check()
            return None
        usable = (
            application.authorization_grant_type == Application.GRANT_CLIENT_CREDENTIALS
            and ApiClient.objects.filter(application=application, is_active=True).exists()
        )
        if not usable:
            request.client = None
            _spend_a_secret_check()
            return None
        return application

    def validate_grant_type(self, client_id, grant_type, client, request, *args, **kwargs):
        return grant_type == "client_credentials" and super().validate_grant_type(
            client_id, grant_type, client, request, *args, **kwargs
        )
