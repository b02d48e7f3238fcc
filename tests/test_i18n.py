"""French by default, English on request: the back-office's language, its number formats, and the locale files.

The rest of the suite reads the back-office in English (tests/conftest.py, ``english_back_office``); here the
fixture is overridden so that a request with no cookie and no Accept-Language meets the French default.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import translation
from django.utils.html import escape

from dossiers.models import Dossier
from dossiers.services import dossier_create, dossier_score
from riskoffice.audit import Actor
from riskoffice.templatetags.riskoffice_tags import eur, pct
from scoring.model.features import FEATURES_BY_NAME
from tests.conftest import ROOT, login

pytestmark = pytest.mark.django_db

PO = ROOT / "locale" / "fr" / "LC_MESSAGES" / "django.po"
NBSP = "\u00a0"


@pytest.fixture(autouse=True)
def english_back_office():
    """Overrides the suite's English default: these tests see the back-office as a new visitor does."""
    with translation.override(settings.LANGUAGE_CODE):
        yield


@pytest.fixture
def dossier(champion, marketplace) -> Dossier:
    dossier = dossier_create(
        partner=marketplace.partner,
        siren="552100554",
        requested_amount=Decimal("25000"),
        bank_tokens=["t"],
        actor=Actor(client=marketplace.api_client),
    )
    assert dossier_score(dossier_id=dossier.pk) is not None
    dossier.refresh_from_db()
    return dossier


def percent(value: float, digits: int, decimal_mark: str) -> str:
    rounded = Decimal(str(100 * value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    return f"{rounded}".replace(".", decimal_mark)


# --- the language of a page ---------------------------------------------------------------------------------


def test_the_back_office_speaks_french_to_a_new_visitor(client):
    """No cookie, no Accept-Language: the login page is in French, and says so."""
    response = client.get("/login/")

    body = response.content.decode()
    assert settings.LANGUAGE_CODE == "fr"
    assert '<html lang="fr">' in body
    assert ">Se connecter</h1>" in body and ">Identifiant</label>" in body
    assert '<a class="skip-link" href="#content">Aller au contenu</a>' in body
    assert response["Content-Language"] == "fr"


def test_an_analyst_works_the_queue_in_french_and_a_forbidden_page_says_so_in_french(client, analyst, outsider):
    login(client, analyst)
    body = client.get("/dossiers/").content.decode()
    assert '<html lang="fr">' in body and ">File d'attente</a>" in body and "Se déconnecter" in body

    login(client, outsider)
    response = client.get("/dossiers/")
    assert response.status_code == 403
    assert "Accès refusé" in response.content.decode()


def test_a_browser_asking_for_english_gets_english(client, analyst):
    login(client, analyst)
    body = client.get("/dossiers/", HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9").content.decode()

    assert '<html lang="en">' in body and ">Queue</a>" in body and "Skip to content" in body


def test_the_switch_sets_the_language_for_the_pages_that_follow(client, analyst):
    """The switch posts to set_language; its cookie wins over the browser's Accept-Language from then on."""
    login(client, analyst)
    assert "English</button>" in client.get("/dossiers/").content.decode()  # offered from the French page

    response = client.post("/i18n/setlang/", {"language": "en", "next": "/dossiers/"})

    assert response.status_code == 302 and response["Location"] == "/dossiers/"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    body = client.get("/dossiers/", HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9").content.decode()
    assert '<html lang="en">' in body and ">Queue</a>" in body and "Français</button>" in body

    client.post("/i18n/setlang/", {"language": "fr", "next": "/dossiers/"})
    assert '<html lang="fr">' in client.get("/dossiers/").content.decode()


def test_the_switch_refuses_to_send_the_user_off_site(client, analyst):
    login(client, analyst)
    response = client.post("/i18n/setlang/", {"language": "en", "next": "https://evil.example/"})

    assert response.status_code == 302 and response["Location"] == "/"


# --- French numbers on the dossier page -----------------------------------------------------------------------


def test_the_dossier_page_writes_numbers_and_labels_the_french_way(client, analyst, dossier):
    """PD "0,37 %", amounts "25 000 €" (a non-breaking space groups the thousands), French labels on the bars."""
    score = dossier.scores.get()
    login(client, analyst)

    body = client.get(f"/dossiers/{dossier.pk}/").content.decode()

    pd = percent(score.probability_of_default, 2, ",")
    assert f'data-testid="pd">{pd}{NBSP}%<' in body
    assert f"<strong>25{NBSP}000{NBSP}€</strong>" in body
    assert "Probabilité de défaut" in body and "Décision en vigueur" in body
    for name in score.contributions:
        assert f'<th scope="row">{escape(FEATURES_BY_NAME[name].label_fr)}</th>' in body
    if score.recommended_limit:
        assert f"{eur(score.recommended_limit)}" in body and "€" in eur(score.recommended_limit)[-1]


def test_the_dossier_page_in_english_writes_numbers_the_english_way(client, analyst, dossier):
    score = dossier.scores.get()
    login(client, analyst)

    body = client.get(f"/dossiers/{dossier.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    pd = percent(score.probability_of_default, 2, ".")
    assert f'data-testid="pd">{pd} %<' in body
    assert "<strong>€25,000</strong>" in body
    assert "Probability of default" in body
    for name in score.contributions:
        assert f'<th scope="row">{escape(FEATURES_BY_NAME[name].label_en)}</th>' in body


@pytest.mark.parametrize(
    ("language", "value", "digits", "expected"),
    [
        ("fr", 0.0037, 2, f"0,37{NBSP}%"),
        ("en", 0.0037, 2, "0.37 %"),
        ("fr", 0.0342, 1, f"3,4{NBSP}%"),
        ("fr", 0.12345, 2, f"12,35{NBSP}%"),  # rounded half up, not truncated
        ("en", None, 2, "—"),
    ],
)
def test_the_pct_filter_follows_the_language(language, value, digits, expected):
    with translation.override(language):
        assert pct(value, digits) == expected


@pytest.mark.parametrize(
    ("language", "value", "expected"),
    [
        ("fr", -37662, f"-37{NBSP}662{NBSP}€"),  # the issue saw "€-37,662"
        ("en", -37662, "-€37,662"),
        ("fr", Decimal("1234567.50"), f"1{NBSP}234{NBSP}568{NBSP}€"),
        ("en", Decimal("1234567.50"), "€1,234,568"),
        ("fr", -0.2, f"0{NBSP}€"),  # no "-0 €"
        ("en", "", "—"),
        ("en", "not a number", "—"),
    ],
)
def test_the_eur_filter_puts_the_sign_first_and_the_euro_where_the_language_wants_it(language, value, expected):
    with translation.override(language):
        assert eur(value) == expected


# --- the partner API keeps its English contract --------------------------------------------------------------


def test_the_api_answers_in_english_whatever_accept_language_says(client, api):
    """Partners match on the API's messages: Accept-Language: fr changes the explanation texts, never the errors."""
    in_french = client.get("/api/v1/scores", HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9")
    in_english = client.get("/api/v1/scores", HTTP_ACCEPT_LANGUAGE="en")
    invalid = api.post("/api/v1/scores", {"company": {}, "requested_amount": "beaucoup"}, HTTP_ACCEPT_LANGUAGE="fr")

    assert in_french.status_code == 401 and in_french["Content-Language"] == "en"
    assert in_french.json() == in_english.json()
    assert invalid.status_code == 400 and invalid["Content-Language"] == "en"
    assert "A valid number is required." in invalid.content.decode(), invalid.content
    assert "nombre valide" not in invalid.content.decode()


# --- the locale files -------------------------------------------------------------------------------------------


def test_every_message_of_the_french_catalogue_is_translated():
    """No empty msgstr and none fuzzy (gettext would show those in English)."""
    catalogue = polib.pofile(str(PO))

    missing = [entry.msgid for entry in catalogue if not entry.obsolete and (entry.fuzzy or not entry.translated())]

    assert len(catalogue) > 100
    assert missing == [], f"{len(missing)} messages untranslated: run /tmp/helpers/merge_fr.py or edit {PO}"


def test_the_french_catalogue_holds_every_message_of_the_sources(tmp_path):
    """makemessages run on a copy of the sources finds no message the committed catalogue lacks."""
    if shutil.which("xgettext") is None:
        pytest.fail("GNU gettext (xgettext) is missing: apt-get install gettext (scripts/test.sh does it as root)")
    copy = tmp_path / "repo"
    ignore = shutil.ignore_patterns(".venv", ".git", "var", "test-artifacts", "__pycache__", "*.mo", "docs", "tests")
    shutil.copytree(ROOT, copy, ignore=ignore)
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "fr", "--ignore=scripts/*", "-v", "0"],
        cwd=copy,
        env={"PATH": "/usr/bin:/bin", "RISKOFFICE_VAR_DIR": str(tmp_path / "var")},
        check=True,
        capture_output=True,
        timeout=120,
    )

    def messages(path: Path) -> set[tuple[str | None, str]]:
        return {(entry.msgctxt, entry.msgid) for entry in polib.pofile(str(path)) if not entry.obsolete}

    new = messages(copy / "locale" / "fr" / "LC_MESSAGES" / "django.po") - messages(PO)
    assert new == set(), f"messages missing from {PO}: run makemessages -l fr (or /tmp/helpers/merge_fr.py)"


def test_compile_locales_writes_a_catalogue_gettext_reads_without_gnu_gettext(tmp_path, settings):
    target = tmp_path / "fr" / "LC_MESSAGES"
    target.mkdir(parents=True)
    shutil.copy(PO, target / "django.po")
    settings.LOCALE_PATHS = [tmp_path]

    call_command("compile_locales", verbosity=0)

    compiled = polib.mofile(str(target / "django.mo"))
    assert compiled.find("Skip to content").msgstr == "Aller au contenu"
    assert compiled.metadata["Plural-Forms"].startswith("nplurals=2")


def test_compile_locales_check_names_the_untranslated_messages(tmp_path, settings):
    target = tmp_path / "fr" / "LC_MESSAGES"
    target.mkdir(parents=True)
    catalogue = polib.pofile(str(PO))
    catalogue.find("Skip to content").msgstr = ""
    catalogue.save(str(target / "django.po"))
    settings.LOCALE_PATHS = [tmp_path]

    with pytest.raises(CommandError, match="Skip to content"):
        call_command("compile_locales", check=True, verbosity=0)
    assert polib.mofile(str(target / "django.mo")).find("Skip to content") is None  # left in English
