"""French company identifiers: SIREN (Luhn, La Poste's exception), SIRET, and the FR VAT number's key."""

from __future__ import annotations

import pytest

from dossiers.identifiers import french_vat_key, luhn_valid, siren_error, siret_error, vat_error, vat_for_siren

# --- SIREN ------------------------------------------------------------------------------------


@pytest.mark.parametrize("siren", ["552100554", "732829320"])
def test_a_siren_passing_the_luhn_checksum_is_valid(siren: str) -> None:
    assert siren_error(siren) is None


def test_la_poste_siren_is_valid() -> None:
    assert siren_error("356000000") is None


def test_the_articles_example_siren_fails_the_luhn_checksum() -> None:
    error = siren_error("812345678")

    assert error is not None
    assert "Luhn" in error


@pytest.mark.parametrize("siren", ["55210055", "5521005540", "", "552 100 554"])
def test_a_siren_that_is_not_nine_characters_long_is_refused(siren: str) -> None:
    assert siren_error(siren) == "A SIREN is exactly 9 digits."


@pytest.mark.parametrize("siren", ["55210055A", "ABCDEFGHI", "5521-0055", "+55210055"])
def test_a_siren_containing_letters_or_symbols_is_refused(siren: str) -> None:
    assert siren_error(siren) == "A SIREN is exactly 9 digits."


@pytest.mark.parametrize("siren", ["５５２１００５５４", "55210055²", "٥٥٢١٠٠٥٥٤"])
def test_a_siren_written_with_non_ascii_digits_is_refused_not_crashed_on(siren: str) -> None:
    assert siren_error(siren) == "A SIREN is exactly 9 digits."


@pytest.mark.parametrize(
    ("digits", "valid"),
    [("0", True), ("18", True), ("79927398713", True), ("79927398710", False), ("552100555", False)],
)
def test_luhn_doubles_every_second_digit_from_the_right(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


# --- SIRET ------------------------------------------------------------------------------------


@pytest.mark.parametrize("siret", ["73282932000074", "55210055400005"])
def test_a_siret_passing_the_luhn_checksum_over_fourteen_digits_is_valid(siret: str) -> None:
    assert siret_error(siret) is None


def test_a_siret_failing_the_luhn_checksum_is_refused() -> None:
    error = siret_error("73282932000079")

    assert error is not None
    assert "Luhn" in error


@pytest.mark.parametrize("siret", ["7328293200007", "732829320000740", "7328293200007A", "732829320 00074"])
def test_a_siret_that_is_not_fourteen_digits_is_refused(siret: str) -> None:
    assert siret_error(siret) == "A SIRET is exactly 14 digits."


def test_a_siret_whose_siren_part_fails_luhn_is_refused_even_if_the_fourteen_digits_pass() -> None:
    siret = "81234567800005"  # 812345678 fails Luhn; the NIC was picked so that the 14 digits pass
    assert luhn_valid(siret)

    assert siret_error(siret) is not None


@pytest.mark.parametrize("siret", ["35600000049837", "35600000000051"])
def test_a_la_poste_establishment_is_valid_when_its_digits_sum_to_a_multiple_of_five(siret: str) -> None:
    assert sum(int(c) for c in siret) % 5 == 0

    assert siret_error(siret) is None


def test_a_la_poste_establishment_whose_digits_do_not_sum_to_a_multiple_of_five_is_refused() -> None:
    assert siret_error("35600000049838") is not None


def test_la_postes_head_office_siret_follows_luhn_and_is_valid() -> None:
    # 356 000 000 00048: digit sum 26, so not the "multiple of 5" rule; it passes Luhn like any other SIRET.
    assert siret_error("35600000000048") is None


# --- VAT --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("siren", "key"), [("552100554", "96"), ("732829320", "44"), ("812345678", "25"), ("356000000", "39")]
)
def test_the_french_vat_key_is_12_plus_3_times_siren_mod_97_all_mod_97(siren: str, key: str) -> None:
    assert french_vat_key(siren) == key == f"{(12 + 3 * (int(siren) % 97)) % 97:02d}"


def test_the_vat_key_is_zero_padded_to_two_digits() -> None:
    siren = next(f"{n:09d}" for n in range(10**8, 10**8 + 10_000) if french_vat_key(f"{n:09d}")[0] == "0")

    assert len(french_vat_key(siren)) == 2
    assert vat_for_siren(siren) == f"FR{french_vat_key(siren)}{siren}"


@pytest.mark.parametrize(("vat", "siren"), [("FR96552100554", "552100554"), ("FR44732829320", "732829320")])
def test_a_vat_number_with_the_right_key_for_its_siren_is_valid(vat: str, siren: str) -> None:
    assert vat_error(vat, siren) is None


@pytest.mark.parametrize("vat", ["fr96552100554", "FR 96 552 100 554", " FR96552100554 "])
def test_a_vat_number_is_checked_after_removing_spaces_and_upper_casing(vat: str) -> None:
    assert vat_error(vat, "552100554") is None


def test_the_articles_example_vat_number_has_the_wrong_key_and_the_error_gives_the_right_one() -> None:
    error = vat_error("FR78812345678", "812345678")

    assert error is not None
    assert "FR25812345678" in error


def test_a_vat_number_belonging_to_another_siren_is_refused_naming_that_siren() -> None:
    error = vat_error("FR44732829320", "552100554")

    assert error is not None
    assert "732829320" in error


@pytest.mark.parametrize("vat", ["DE123456789", "BE0403170701", "96552100554"])
def test_a_non_french_vat_number_is_refused(vat: str) -> None:
    assert vat_error(vat, "552100554") == "Only French VAT numbers (FR + 2-digit key + SIREN) are accepted."


@pytest.mark.parametrize("vat", ["FR9655210055", "FR965521005540", "FRAB552100554", "FR9655210055X"])
def test_a_french_vat_number_that_is_not_fr_plus_eleven_digits_is_refused(vat: str) -> None:
    assert vat_error(vat, "552100554") == "A French VAT number is FR followed by 11 digits (2-digit key + SIREN)."
