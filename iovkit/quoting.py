"""Quoting names into commands a user runs as written (check fixes, rendered runbooks)."""

from __future__ import annotations

import re
import shlex

# PowerShell treats the typographic quotes U+2018..U+201B as single quotes too, so they are doubled as well.
_PS_QUOTES = re.compile("(['\u2018\u2019\u201a\u201b])")


def ps_quote(value: str) -> str:
    """A PowerShell single-quoted literal: nothing inside is expanded."""
    return "'" + _PS_QUOTES.sub(r"\1\1", value) + "'"


def sh_quote(value: str) -> str:
    """A POSIX shell word."""
    return shlex.quote(value)
