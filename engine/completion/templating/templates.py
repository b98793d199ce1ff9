"""FIM templates: loaded from ``prompts/fim/*.toml`` and rendered with a cursor context.

Rendering puts what changes least first: repository name, other files' headers, the current
file's path and header, the window, and last what changes with each keystroke."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

from engine.completion.context import CursorContext

Order = Literal["psm", "spm", "prefix_only"]
_HASH_COMMENT_LANGUAGES = {
    "python",
    "ruby",
    "shellscript",
    "sh",
    "bash",
    "perl",
    "r",
    "yaml",
    "toml",
    "elixir",
    "julia",
    "nim",
    "coffeescript",
    "makefile",
}


@dataclass(frozen=True)
class FimTemplate:
    name: str
    family: str
    model_patterns: tuple[str, ...]
    order: Order
    # Marker strings that must each be one token of the served tokenizer.
    markers: tuple[str, ...]
    # Placeholders: {prefix} (lines before the cursor's line), {line_prefix} (that line up to
    # the cursor), {suffix}. Putting {line_prefix} after the middle marker makes typing along a
    # line a pure append to the prompt, so everything before it stays cached.
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

    def render(self, context: CursorContext, repo_headers: bool = True) -> str:
        prefix, line_prefix = context.prefix, context.line_prefix
        if context.cursor_line_in_prefix:
            prefix, line_prefix = prefix + line_prefix, ""
        head = ""
        if repo_headers and self.repo_header and self.file_header:
            if context.workspace_name:
                head += self.repo_header.format(repo=context.workspace_name)
            previous = None
            for entry in context.repository:
                # Declarations of one file appended together share its marker.
                if entry.path != previous:
                    head += self.file_header.format(path=entry.path)
                head += entry.text + "\n"
                previous = entry.path
            if context.relative_path:
                head += self.file_header.format(path=context.relative_path)
        elif context.repository:
            prefix = _as_comments(context) + prefix
        # format_map parses only the template; code with braces is inserted verbatim.
        return head + self.prompt.format_map(
            {
                "prefix": context.file_header + prefix,
                "line_prefix": line_prefix,
                "suffix": context.suffix,
            }
        )


def _as_comments(context: CursorContext) -> str:
    """Other files' headers for templates without repository markers: as comments."""
    mark = "#" if context.language_id in _HASH_COMMENT_LANGUAGES else "//"
    blocks = []
    previous = None
    for entry in context.repository:
        body = "\n".join(f"{mark} {line}" for line in entry.text.splitlines())
        blocks.append(f"{mark} {entry.path}\n{body}\n" if entry.path != previous else f"{body}\n")
        previous = entry.path
    return "".join(blocks)


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

    def optional(key: str) -> str | None:
        value = data.get(key)
        return None if value is None else str(value)

    order = str(data["order"])
    assert order in ("psm", "spm", "prefix_only"), order
    return FimTemplate(
        name=str(data["name"]),
        family=str(data["family"]),
        model_patterns=strings("model_patterns"),
        order=order,  # type: ignore[arg-type]
        markers=strings("markers"),
        prompt=str(data["prompt"]),
        stop=strings("stop"),
        repo_header=optional("repo_header"),
        file_header=optional("file_header"),
        repo_markers=strings("repo_markers"),
    )
