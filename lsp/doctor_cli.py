"""``iquest-lsp doctor``: print the engine's checks of each endpoint."""

from __future__ import annotations

from pathlib import Path

from engine.config import SettingsError, default_log_path
from engine.deploy.profiles import UnknownProfile, profile_named
from engine.doctor import diagnose
from lsp.settings import SettingsLayers

_MARKS = {True: "ok  ", False: "FAIL", None: "??  "}


async def run_doctor(
    config_path: Path | None, profile_name: str | None = None, editors: int | None = None
) -> int:
    layers = SettingsLayers(config_path)
    print(
        f"config file: {layers.config_path}"
        + ("" if layers.config_path.exists() else " (absent: defaults and environment)")
    )
    try:
        settings = layers.build()
    except SettingsError as error:
        print(f"FAIL settings: {error}")
        return 1
    print(f"log file:    {settings.log_file or default_log_path()}")
    profile = None
    if profile_name is not None:
        try:
            profile = (profile_name, profile_named(profile_name, settings.profiles))
        except UnknownProfile as error:
            print(f"FAIL {error}")
            return 1
    if editors is not None and editors < 1:
        print(f"FAIL --editors {editors}: give the number of editors, at least 1")
        return 1
    reports = await diagnose(settings, profile, editors)
    for report in reports:
        print(f"\n{report.role} endpoint {report.url}")
        for check in report.checks:
            print(f"  [{_MARKS[check.ok]}] {check.name}: {check.detail}")
    healthy = all(report.ok for report in reports)
    print("\nall checks passed" if healthy else "\nsome checks failed")
    return 0 if healthy else 1
