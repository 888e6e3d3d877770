"""Structured JSON logs, one object per line, as Cloud Logging parses them from stdout.

`severity` and `message` are the fields Cloud Logging lifts; every other keyword becomes a
field of `jsonPayload`, so entries can be filtered by job id, key id or outcome. Entries less
severe than `VBG_LOG_LEVEL` (`config.settings().log_level`, INFO by default) are not written.
"""

import json
import sys
import time
from datetime import date, datetime
from decimal import Decimal

from shared.core import config

RANKS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


def _default(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return repr(value)


def _threshold() -> int:
    """The rank below which entries are dropped; none are while the settings cannot be read,
    so that the entry saying why is written."""
    try:
        return RANKS[config.settings().log_level]
    except config.ConfigError:
        return 0


def log(severity: str, message: str, **fields) -> None:
    if RANKS.get(severity, RANKS["CRITICAL"]) < _threshold():
        return
    entry = {"severity": severity, "message": message, "time": time.time(), **fields}
    sys.stdout.write(json.dumps(entry, default=_default, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def debug(message: str, **fields) -> None:
    log("DEBUG", message, **fields)


def info(message: str, **fields) -> None:
    log("INFO", message, **fields)


def warning(message: str, **fields) -> None:
    log("WARNING", message, **fields)


def error(message: str, **fields) -> None:
    log("ERROR", message, **fields)


def critical(message: str, **fields) -> None:
    log("CRITICAL", message, **fields)
