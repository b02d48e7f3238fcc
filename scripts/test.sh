#!/usr/bin/env bash
# Run the test suite. Browser tests need Chromium (/usr/bin/chromium); as root on Debian it is
# installed when missing, otherwise the tests that need it fail with a message saying so.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing Chromium for the browser tests (apt-get install chromium)..."
    (apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; })
fi
# The .po round-trip test runs makemessages, which needs GNU gettext's xgettext (compiling needs nothing).
if ! command -v xgettext >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing GNU gettext for the translation tests (apt-get install gettext)..."
    (apt-get install -y -qq gettext >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq gettext >/dev/null; })
fi
# The tests read the back-office in French too: compile the translations first.
.venv/bin/python manage.py compile_locales -v 0
# Live-server threads would otherwise keep persistent connections open past the test database's teardown.
export DATABASE_CONN_MAX_AGE="${DATABASE_CONN_MAX_AGE:-0}"
exec .venv/bin/python -m pytest "$@"
