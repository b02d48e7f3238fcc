"""Compile the back-office's translations (locale/<lang>/LC_MESSAGES/django.po -> django.mo) in pure Python.

Django's own ``compilemessages`` needs GNU gettext's ``msgfmt``, which a newcomer's machine may not have; polib
writes the same binary catalogue. The set-up (make install, scripts/demo.sh, scripts/test.sh) runs this command,
so the compiled files are never committed: they cannot drift from the .po files they come from.
"""

from __future__ import annotations

from pathlib import Path

import polib
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


def catalogues() -> list[Path]:
    """Every .po file under LOCALE_PATHS (our own translations; installed packages ship theirs compiled)."""
    return sorted(po for root in settings.LOCALE_PATHS for po in Path(root).glob("*/LC_MESSAGES/*.po"))


def untranslated(catalogue: polib.POFile) -> list[str]:
    """Messages a reader would see in English: no translation, or a fuzzy one (gettext ignores those)."""
    return [entry.msgid for entry in catalogue if not entry.obsolete and (entry.fuzzy or not entry.translated())]


class Command(BaseCommand):
    help = "Compile locale/*/LC_MESSAGES/*.po into .mo files (pure Python: no GNU gettext needed)."
    requires_system_checks = []  # runs before the first migrate, from the set-up scripts

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--check",
            action="store_true",
            help="Fail, naming them, when a catalogue has untranslated or fuzzy messages.",
        )

    def handle(self, *args, check: bool = False, verbosity: int = 1, **options) -> None:
        paths = catalogues()
        if not paths:
            raise CommandError(f"no .po file under {', '.join(str(p) for p in settings.LOCALE_PATHS)}")
        missing: dict[Path, list[str]] = {}
        for po_path in paths:
            try:
                catalogue = polib.pofile(str(po_path))
            except (OSError, ValueError) as error:
                raise CommandError(f"{po_path}: {error}") from error
            catalogue.save_as_mofile(str(po_path.with_suffix(".mo")))  # fuzzy and empty entries are left out
            gaps = untranslated(catalogue)
            if gaps:
                missing[po_path] = gaps
            if verbosity:
                done = len(catalogue) - len(gaps)
                self.stdout.write(f"{po_path}: {done} of {len(catalogue)} translated")
        if check and missing:
            lines = [f"{path}: {msgid!r}" for path, gaps in missing.items() for msgid in gaps]
            raise CommandError("untranslated or fuzzy messages:\n" + "\n".join(lines))
