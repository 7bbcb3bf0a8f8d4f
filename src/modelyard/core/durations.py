"""Durations as people write them: ``500ms``, ``30s``, ``2m``, ``1h``, ``7d``, or
plain seconds (``90``). Used by rollout steps, alert windows and cooldowns."""

from __future__ import annotations

import re

from modelyard.core.errors import InvalidParameter

__all__ = ["parse_seconds"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_seconds(text: str | float | int, what: str = "duration") -> float:
    """``text`` in seconds; InvalidParameter naming ``what`` when it is not a duration."""
    if isinstance(text, (int, float)) and not isinstance(text, bool) and text >= 0:
        return float(text)
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidParameter(
            f"{what}: {text!r} is not a duration; expected e.g. 500ms, 30s, 2m, 1h, 7d "
            "or plain seconds"
        )
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
