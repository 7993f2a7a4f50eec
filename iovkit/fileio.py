"""Reading the files users hand us, with one-line errors that name the file and what is wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from iovkit.errors import InputError


def read_text(path: Path, encoding: str = "utf-8-sig") -> str:
    """A text file; a missing, unreadable or wrongly encoded file is an InputError naming it."""
    try:
        return path.read_text(encoding=encoding)
    except FileNotFoundError as err:
        raise InputError("no such file", path=str(path)) from err
    except IsADirectoryError as err:
        raise InputError("is a directory, not a file", path=str(path)) from err
    except OSError as err:
        raise InputError(f"cannot read: {err.strerror}", path=str(path)) from err
    except UnicodeDecodeError as err:
        raise InputError(f"not {encoding} text (byte {err.start})", path=str(path)) from err


def parse_json(text: str, origin: str) -> Any:
    """Decode JSON; a truncated or invalid document names its line and column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(
            f"truncated or invalid JSON: {err.msg} at line {err.lineno} column {err.colno}", path=origin
        ) from err


def read_json(path: Path) -> Any:
    """A JSON file (a UTF-8 BOM, as Windows PowerShell 5.1 writes, is accepted)."""
    return parse_json(read_text(path), str(path))
