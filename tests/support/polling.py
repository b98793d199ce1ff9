"""Waiting for a condition instead of sleeping a fixed time and hoping (fixed sleeps flake on
CI's busy cores and waste time on a quiet machine)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def eventually(condition: Callable[[], bool], within_s: float, what: str = "") -> None:
    """Returns once ``condition()`` holds; fails the test if it does not within ``within_s``."""
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within_s} s: {what or condition}")
        await asyncio.sleep(0.02)
