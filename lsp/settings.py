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

# Team mode: an editor key and the range its value is held to; None as the upper end: at most
# what the server's own settings say (an editor may ask for fewer tokens, never for more).
Bounds = tuple[float | None, float | None] | None


class SettingsLayers:
    """The one way settings are read: the config file, the environment, then (for an editor's
    connection) what the editor sends, held within bounds in team mode. Holds each layer so
    that a change to one can be re-merged with the others."""

    def __init__(
        self,
        config_path: Path | None = None,
        forced: Mapping[str, Any] | None = None,
        editor_keys: Mapping[str, Mapping[str, Bounds]] | None = None,
    ) -> None:
        self.config_path = config_path or config_path_from_environment()
        self.initialization_options: dict[str, Any] = {}
        self.editor: dict[str, Any] = {}
        # Set over everything else (team mode: the user's cache salt).
        self.forced = dict(forced) if forced is not None else None
        # When given, the only keys an editor may set, per table, and their bounds (team mode).
        self.editor_keys = editor_keys

    def set_initialization_options(self, options: object) -> None:
        self.initialization_options = self._editor_layer(_section(options))

    def set_editor(self, settings: object) -> None:
        self.editor = self._editor_layer(_section(settings))

    def server_layer(self) -> dict[str, Any]:
        """What the machine's owner wrote (file and environment), before any editor's layer."""
        return merge_layers(read_config_file(self.config_path), environment_layer())

    def server_settings(self) -> Settings:
        """The daemon's own settings, no editor's (a team daemon's process-wide choices)."""
        return build_settings(merge_layers(self.server_layer(), self.forced))

    def build(self) -> Settings:
        server = self.server_layer()
        editor = merge_layers(self.initialization_options, self.editor)
        if self.editor_keys is not None:
            editor = self._bounded(editor, build_settings(merge_layers(server, self.forced)))
        return build_settings(merge_layers(server, editor, self.forced))

    def _editor_layer(self, layer: dict[str, Any]) -> dict[str, Any]:
        if self.editor_keys is None:
            return layer
        return {
            table: kept
            for table, allowed in self.editor_keys.items()
            if isinstance(layer.get(table), Mapping)
            and (kept := {k: v for k, v in layer[table].items() if k in allowed})
        }

    def _bounded(self, layer: dict[str, Any], server: Settings) -> dict[str, Any]:
        """Numbers an editor set, held to their bounds (the server's value as the ceiling
        where no fixed one is given); anything else is left to validation."""
        assert self.editor_keys is not None
        bounded: dict[str, Any] = {}
        for table, values in layer.items():
            rules = self.editor_keys.get(table, {})
            kept = dict(values) if isinstance(values, Mapping) else values
            for key, value in list(kept.items()) if isinstance(kept, dict) else []:
                bounds = rules.get(key)
                if bounds is None or isinstance(value, bool) or not isinstance(value, int | float):
                    continue
                low, high = bounds
                if high is None:
                    high = getattr(getattr(server, table), key)
                kept[key] = type(value)(min(max(value, low if low is not None else value), high))
            bounded[table] = kept
        return bounded


def _section(value: object) -> dict[str, Any]:
    """Accept both ``{"iquest": {...}}`` and the bare section."""
    if not isinstance(value, Mapping):
        return {}
    inner = value.get(SECTION, value)
    return dict(inner) if isinstance(inner, Mapping) else {}
