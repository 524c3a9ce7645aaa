"""Durations in config values: ``"30d"`` → seconds. Shared by config.py and cdn/settings.py, so the
CDN settings validate without importing the config module back."""

from __future__ import annotations

import re

from .errors import ConfigError

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str | int | float, *, where: str) -> float:
    """``"30d"`` → seconds. Units s, m, h, d, w; a bare number is seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    m = _DURATION.match(str(text).strip().lower())
    if not m:
        raise ConfigError(f"{where}: {text!r} is not a duration", hint="Use a number with s, m, h, d or w (e.g. 30d).")
    return float(m.group(1)) * _UNITS[m.group(2)]
