"""French company identifiers: SIREN (Luhn), SIRET, intra-EU VAT number (FR + key + SIREN).

The checksums come from python-stdnum, which also knows La Poste's SIRET rule and
the other EU VAT formats; this module turns its verdicts into the sentences a
partner reads in a 400.
"""

from __future__ import annotations

from stdnum import luhn
from stdnum.fr import siren as stdnum_siren
from stdnum.fr import siret as stdnum_siret
from stdnum.fr import tva as stdnum_tva


def _digits(value: str, length: int) -> bool:
    return len(value) == length and value.isascii() and value.isdigit()


def luhn_valid(digits: str) -> bool:
    return luhn.is_valid(digits)


def siren_error(siren: str) -> str | None:
    """Why ``siren`` is not a valid SIREN, or None when it is."""
    if not _digits(siren, 9):
        return "A SIREN is exactly 9 digits."
    if not stdnum_siren.is_valid(siren):
        return f"SIREN {siren} fails the Luhn checksum."
    return None


def siret_error(siret: str) -> str | None:
    """Why ``siret`` is not a valid SIRET (La Poste's establishments follow their own sum-of-5 rule)."""
    if not _digits(siret, 14):
        return "A SIRET is exactly 14 digits."
    if siren_error(siret[:9]):
        return f"SIRET {siret} does not start with a valid SIREN."
    if not stdnum_siret.is_valid(siret):
        rule = "La Poste's checksum" if siret.startswith("356000000") else "the Luhn checksum"
        return f"SIRET {siret} fails {rule}."
    return None


def french_vat_key(siren: str) -> str:
    """The two-digit key of the French VAT number: (12 + 3 × (SIREN mod 97)) mod 97."""
    return stdnum_siren.to_tva(siren)[:2]


def vat_for_siren(siren: str) -> str:
    return f"FR{stdnum_siren.to_tva(siren)}"


def normalise_vat(vat: str) -> str:
    return "".join(vat.split()).upper()


def vat_error(vat: str, siren: str) -> str | None:
    """Why ``vat`` is not the French VAT number of ``siren``, or None when it is."""
    vat = normalise_vat(vat)
    if not vat.startswith("FR"):
        return "Only French VAT numbers (FR + 2-digit key + SIREN) are accepted."
    if not _digits(vat[2:], 11):
        return "A French VAT number is FR followed by 11 digits (2-digit key + SIREN)."
    if vat[4:] != siren:
        return f"VAT number {vat} belongs to SIREN {vat[4:]}, not {siren}."
    if not stdnum_tva.is_valid(vat):
        return f"VAT key {vat[2:4]} is wrong for SIREN {siren}; expected {vat_for_siren(siren)}."
    return None
