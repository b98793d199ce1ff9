"""Gathering the settings layers the editor contributes, on top of file and environment."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.config import (
    Settings,
    build_settings,
    config_path_from_environment,
    environment_layer,
    merge_layers,
    read_config_file,
)

SECTION = "iquest"


class SettingsLayers:
    """Holds each layer so that a change to one can be re-merged with the others."""

    def __init__(self, config_path: Path | None = None) -> None:
        self.config_path = config_path or config_path_from_environment()
        self.initialization_options: dict[str, Any] = {}
        self.editor: dict[str, Any] = {}

    def set_initialization_options(self, options: object) -> None:
        self.initialization_options = _section(options)

    def set_editor(self, settings: object) -> None:
        self.editor = _section(settings)

    def build(self) -> Settings:
        return build_settings(
            merge_layers(
                read_config_file(self.config_path),
                environment_layer(),
                self.initialization_options,
                self.editor,
            )
        )


def _section(value: object) -> dict[str, Any]:
    """Accept both ``{"iquest": {...}}`` and the bare section."""
    if not isinstance(value, Mapping):
        return {}
    inner = value.get(SECTION, value)
    return dict(inner) if isinstance(inner, Mapping) else {}
