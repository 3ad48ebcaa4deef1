"""Debian's headless Chromium for the page tests (through Playwright), set up one way."""

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, async_playwright

CHROMIUM = "/usr/bin/chromium"

# Quiet and offline: no first-run screens, no background fetches a test could wait on.
_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@contextlib.asynccontextmanager
async def chromium(profile: Path, *args: str, **options: Any) -> AsyncIterator[BrowserContext]:
    """A persistent Chromium context in `profile`; `args` add switches, `options` settings."""
    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=[*_ARGS, *args],
            **options,
        )
        try:
            yield context
        finally:
            await context.close()
