"""French company identifiers: SIREN (Luhn), SIRET, intra-EU VAT number (FR + key + SIREN)."""

from __future__ import annotations

LA_POSTE_SIREN = "356000000"
LA_POSTE_HEAD_OFFICE_SIRET = "35600000000048"  # the one La Poste SIRET that follows Luhn, not the sum-of-5 rule


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def siren_error(siren: str) -> str | None:
    """Why ``siren`` is not a valid SIREN, or None when it is."""
    if len(siren) != 9 or not (siren.isascii() and siren.isdigit()):
        return "A SIREN is exactly 9 digits."
    if siren == LA_POSTE_SIREN:
        return None  # La Poste's SIREN follows "sum of digits is a multiple of 5", which it satisfies
    if not luhn_valid(siren):
        return f"SIREN {siren} fails the Luhn checksum."
    return None


def siret_error(siret: str) -> str | None:
    if len(siret) != 14 or not (siret.isascii() and siret.isdigit()):
        return "A SIRET is exactly 14 digits."
    if siren_error(siret[:9]):
        return f"SIRET {siret} does not start with a valid SIREN."
    if siret.startswith(LA_POSTE_SIREN) and siret != LA_POSTE_HEAD_OFFICE_SIRET:
        return None if sum(int(c) for c in siret) % 5 == 0 else f"SIRET {siret} fails La Poste's checksum."
    return None if luhn_valid(siret) else f"SIRET {siret} fails the Luhn checksum."


def french_vat_key(siren: str) -> str:
    return f"{(12 + 3 * (int(siren) % 97)) % 97:02d}"


def vat_for_siren(siren: str) -> str:
    return f"FR{french_vat_key(siren)}{siren}"


def normalise_vat(vat: str) -> str:
    return "".join(vat.split()).upper()


def vat_error(vat: str, siren: str) -> str | None:
    """Why ``vat`` is not the French VAT number of ``siren``, or None when it is."""
    vat = normalise_vat(vat)
    if not vat.startswith("FR"):
        return "Only French VAT numbers (FR + 2-digit key + SIREN) are accepted."
    if len(vat) != 13 or not vat[2:].isdigit():
        return "A French VAT number is FR followed by 11 digits (2-digit key + SIREN)."
    if vat[4:] != siren:
        return f"VAT number {vat} belongs to SIREN {vat[4:]}, not {siren}."
    expected = french_vat_key(siren)
    if vat[2:4] != expected:
        return f"VAT key {vat[2:4]} is wrong for SIREN {siren}; expected FR{expected}{siren}."
    return None
