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

    def __init__(
        self,
        config_path: Path | None = None,
        forced: Mapping[str, Any] | None = None,
        editor_keys: Mapping[str, set[str]] | None = None,
    ) -> None:
        self.config_path = config_path or config_path_from_environment()
        self.initialization_options: dict[str, Any] = {}
        self.editor: dict[str, Any] = {}
        # Set over everything else (team mode: the user's cache salt).
        self.forced = dict(forced) if forced is not None else None
        # When given, the only keys an editor may set, per table (team mode).
        self.editor_keys = editor_keys

    def set_initialization_options(self, options: object) -> None:
        self.initialization_options = self._editor_layer(_section(options))

    def set_editor(self, settings: object) -> None:
        self.editor = self._editor_layer(_section(settings))

    def build(self) -> Settings:
        return build_settings(
            merge_layers(
                read_config_file(self.config_path),
                environment_layer(),
                self.initialization_options,
                self.editor,
                self.forced,
            )
        )

    def _editor_layer(self, layer: dict[str, Any]) -> dict[str, Any]:
        if self.editor_keys is None:
            return layer
        return {
            table: kept
            for table, allowed in self.editor_keys.items()
            if isinstance(layer.get(table), Mapping)
            and (kept := {k: v for k, v in layer[table].items() if k in allowed})
        }


def _section(value: object) -> dict[str, Any]:
    """Accept both ``{"iquest": {...}}`` and the bare section."""
    if not isinstance(value, Mapping):
        return {}
    inner = value.get(SECTION, value)
    return dict(inner) if isinstance(inner, Mapping) else {}
