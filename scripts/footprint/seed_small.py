"""Small reference rows through the ORM: 50 partners with 2 clients each, users, a champion model."""

import secrets

from django.contrib.auth.models import Group, User
from oauth2_provider.models import Application

from riskoffice.models import ApiClient, Partner
from riskoffice.roles import ALL_ROLES
from scoring.models import ModelVersion

for role in ALL_ROLES:
    Group.objects.get_or_create(name=role)
if not Partner.objects.exists():
    for p in range(50):
        partner = Partner.objects.create(name=f"Partner {p:02d}", is_sandbox=p % 10 == 0)
        for c in range(2):
            app = Application.objects.create(
                name=f"p{p}-c{c}",
                client_id=f"p{p}-c{c}-{secrets.token_hex(4)}",
                client_secret="x",  # noqa: S106 - a throwaway EXPLAIN database
                client_type=Application.CLIENT_CONFIDENTIAL,
                authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
            )
            ApiClient.objects.create(application=app, partner=partner, allowed_scopes=["scores:read"])
    for i in range(20):
        user = User.objects.create_user(f"analyst{i}", password="x")  # noqa: S106 - a throwaway EXPLAIN database
        user.groups.add(Group.objects.get(name="analyst"))
if not ModelVersion.objects.exists():
    ModelVersion.objects.create(
        segment="b2b",
        version=1,
        status="champion",
        booster_ubj=b"x",
        feature_names=[],
        categories={},
        monotone_constraints={},
        params={},
        metrics={},
        training_window={},
        data_hash="x",
    )
print(Partner.objects.count(), ApiClient.objects.count(), ModelVersion.objects.count())
