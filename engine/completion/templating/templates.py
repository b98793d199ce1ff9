"""FIM templates: loaded from ``prompts/fim/*.toml`` and rendered with a cursor context."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

from engine.completion.context import CursorContext

Order = Literal["psm", "spm", "prefix_only"]


@dataclass(frozen=True)
class FimTemplate:
    name: str
    family: str
    model_patterns: tuple[str, ...]
    order: Order
    # Marker strings that must each be one token of the served tokenizer.
    markers: tuple[str, ...]
    prompt: str
    stop: tuple[str, ...]
    repo_header: str | None = None
    file_header: str | None = None
    repo_markers: tuple[str, ...] = ()

    @property
    def is_fim(self) -> bool:
        return self.order != "prefix_only"

    def matches_model(self, model_name: str) -> bool:
        return any(re.search(p, model_name, re.IGNORECASE) for p in self.model_patterns)

    def render(self, context: CursorContext) -> str:
        # Stable text first: repository name, then the file's path, then the code.
        header = ""
        if self.repo_header and context.workspace_name:
            header += self.repo_header.format(repo=context.workspace_name)
        if self.file_header and context.relative_path:
            header += self.file_header.format(path=context.relative_path)
        # format_map parses only the template; code with braces is inserted verbatim.
        body = self.prompt.format_map({"prefix": context.prefix, "suffix": context.suffix})
        return header + body


@cache
def load_templates() -> tuple[FimTemplate, ...]:
    """All shipped templates, in file-name order (prefix-only last: it matches nothing)."""
    folder = resources.files("prompts").joinpath("fim")
    templates = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            templates.append(_from_toml(tomllib.loads(entry.read_text(encoding="utf-8"))))
    return tuple(sorted(templates, key=lambda t: not t.is_fim))


def template_named(name: str) -> FimTemplate:
    for template in load_templates():
        if template.name == name:
            return template
    known = ", ".join(t.name for t in load_templates())
    raise ValueError(f"unknown template {name!r}; known: {known}")


def _from_toml(data: dict[str, object]) -> FimTemplate:
    def strings(key: str) -> tuple[str, ...]:
        value = data.get(key, [])
        assert isinstance(value, list)
        return tuple(str(v) for v in value)

    return FimTemplate(
        name=str(data["name"]),
        family=str(data["family"]),
        model_patterns=strings("model_patterns"),
        order=data["order"],  # type: ignore[arg-type]
        markers=strings("markers"),
        prompt=str(data["prompt"]),
        stop=strings("stop"),
        repo_header=data.get("repo_header"),  # type: ignore[arg-type]
        file_header=data.get("file_header"),  # type: ignore[arg-type]
        repo_markers=strings("repo_markers"),
    )
