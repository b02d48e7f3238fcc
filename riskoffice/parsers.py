"""The API's JSON parser: DRF's, after an iterative check of the nesting depth.

``json.loads`` recurses once per level of nesting: a small body of 50,000 ``[`` exhausts Python's
recursion limit (a 500 before this parser). Counting brackets outside strings costs one regex pass
and never recurses, so a body nested deeper than ``API_MAX_JSON_DEPTH`` is refused before it is loaded.
"""

from __future__ import annotations

import codecs
import io
import re
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# A string (its closing quote optional, so that an unterminated one is consumed once, not rescanned
# from every later quote), or one bracket. Possessive quantifiers: no backtracking on long strings.
_TOKEN = re.compile(r'"(?:[^"\\]++|\\.)*+"?|[\[{]|[\]}]', re.DOTALL)


def json_depth_exceeds(text: str, limit: int) -> bool:
    """Whether the JSON text nests arrays and objects more than ``limit`` levels deep (strings ignored)."""
    if text.count("[") + text.count("{") <= limit:
        return False  # cannot reach the limit: most bodies stop here
    depth = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > limit:
                return True
        elif token in ("]", "}"):
            depth -= 1
    return False


class DepthLimitedJSONParser(JSONParser):
    """DRF's JSONParser, refusing bodies nested deeper than ``settings.API_MAX_JSON_DEPTH`` (a 400 problem)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        raw = stream.read() if stream is not None else b""
        try:
            text = codecs.decode(raw, encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        limit = settings.API_MAX_JSON_DEPTH
        if json_depth_exceeds(text, limit):
            raise ParseError(f"JSON parse error - the body nests arrays and objects more than {limit} levels deep.")
        data = super().parse(io.BytesIO(raw), media_type, parser_context)
        if _holds_nul(data):
            # PostgreSQL's text and JSON columns cannot store U+0000: refused here, never a 500 on save.
            raise ParseError("JSON parse error - strings and names may not contain the NUL character (U+0000).")
        return data


def _holds_nul(value: Any) -> bool:
    """Whether any string or object name in the parsed JSON contains U+0000 (depth is already bounded)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False
