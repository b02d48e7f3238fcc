"""The management commands a newcomer and a data team run: seed_demo, train_model, setup_demo."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from dossiers.identifiers import siren_error, vat_error
from dossiers.models import Dossier, Outcome
from scoring.model.synthetic import true_pd
from scoring.models import FeatureSnapshot, ModelVersion

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_seed_demo_creates_a_labelled_history_of_valid_french_companies(reference_data):
    output = run("seed_demo", "--companies", "800", "--seed", "5")
    history = Dossier.objects.filter(origin=Dossier.Origin.HISTORY).select_related("company")
    assert history.count() == 800
    assert "Seeded 800 historical files" in output
    for dossier in history[:50]:
        assert siren_error(dossier.company.siren) is None
        assert vat_error(dossier.company.vat, dossier.company.siren) is None
    assert Outcome.objects.count() == 800
    default_rate = Outcome.objects.filter(status="defaulted").count() / 800
    assert 0.01 < default_rate < 0.08
    snapshot = FeatureSnapshot.objects.first()
    recorded = snapshot.provenance["synthetic"]["true_pd"]
    assert recorded == pytest.approx(true_pd(snapshot.features), abs=1e-6)
    for dossier in history[:50]:  # every outcome is known: applications are at least a year old
        assert dossier.outcome.occurred_on >= dossier.created_at.date()


def test_seed_demo_twice_keeps_one_history(reference_data):
    run("seed_demo", "--companies", "300")
    output = run("seed_demo", "--companies", "300")
    assert "already present" in output
    assert Dossier.objects.filter(origin=Dossier.Origin.HISTORY).count() == 300


def test_train_model_stores_an_xgboost_model_with_its_features_and_metrics_and_promotes_the_first(reference_data):
    run("seed_demo", "--companies", "2000")
    output = run("train_model")
    model = ModelVersion.objects.get()
    assert model.status == "champion" and model.version == 1
    assert "Trained b2b-v1 (champion)" in output
    assert bytes(model.booster_ubj)[:1] == b"{"  # UBJSON, XGBoost's own format, not a pickle
    assert "company_age_years" in model.feature_names and model.categories["naf_section"]
    assert model.metrics["auc"] > 0.7 and set(model.metrics) >= {"auc", "gini", "ks", "brier"}
    assert model.training_window["from"] < model.training_window["to"]
    assert len(model.data_hash) == 64

    # With a champion in place, training again makes a challenger a senior analyst must approve.
    run("train_model")
    model.refresh_from_db()
    assert model.status == "champion"
    assert ModelVersion.objects.get(version=2).status == "challenger"


def test_train_model_without_labelled_history_says_why(reference_data):
    with pytest.raises(CommandError, match=r"0 matured files.*at least 200 labelled rows"):
        run("train_model")


def test_setup_demo_creates_one_user_per_role_and_a_working_oauth_client(client, champion):
    output = run("setup_demo", "--no-samples")
    for username in ("analyst", "senior", "admin", "auditor"):
        assert User.objects.get(username=username).groups.count() == 1
    secret = re.search(r"client_secret: (\S+)", output).group(1)
    response = client.post(
        "/o/token/", {"grant_type": "client_credentials", "client_id": "demo-marketplace", "client_secret": secret}
    )
    assert response.status_code == 200


def test_setup_demo_scores_sample_dossiers_for_the_queue(champion):
    run("setup_demo")
    samples = Dossier.objects.filter(origin=Dossier.Origin.API)
    assert samples.count() == 11  # eight companies, and three more requests from the first one (its exposure adds up)
    assert all(d.status == "scored" and d.decision for d in samples)
