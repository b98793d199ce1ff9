"""Which template a served model gets: configured, recognised by name, or found by probing.

The served tokenizer decides: a template is usable only when each of its markers is one token.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from engine.completion.templating.templates import FimTemplate, load_templates, template_named

log = logging.getLogger(__name__)

TokenCounter = Callable[[str], Awaitable[int]]


@dataclass(frozen=True)
class TemplateChoice:
    template: FimTemplate
    reason: str
    # A message the user should see (a configured or recognised template that fails the check).
    warning: str | None = None


async def split_markers(template: FimTemplate, count_tokens: TokenCounter) -> list[str]:
    """The template's FIM markers that the tokenizer does not keep as one token."""
    return [m for m in template.markers if await count_tokens(m) != 1]


async def repo_markers_usable(template: FimTemplate, count_tokens: TokenCounter | None) -> bool:
    """Repository headers are sent only when their markers are real tokens too."""
    if not template.repo_markers:
        return False
    if count_tokens is None:
        return True
    return all([await count_tokens(m) == 1 for m in template.repo_markers])


async def choose_template(
    model: str, configured: str, count_tokens: TokenCounter | None
) -> TemplateChoice:
    """``count_tokens`` is None when the server cannot tokenize: trust names, skip checks."""
    prefix_only = template_named("prefix-only")
    if configured != "auto":
        template = template_named(configured)
        broken = await split_markers(template, count_tokens) if count_tokens else []
        warning = _split_warning(template, model, broken) if broken else None
        return TemplateChoice(template, "configured", warning)

    by_name = next((t for t in load_templates() if t.is_fim and t.matches_model(model)), None)
    if by_name is not None:
        broken = await split_markers(by_name, count_tokens) if count_tokens else []
        if not broken:
            return TemplateChoice(by_name, f"model name matches {by_name.family}")
        warning = _split_warning(by_name, model, broken) + " Falling back to a prefix-only prompt."
        return TemplateChoice(prefix_only, "FIM markers failed the tokenizer check", warning)

    if count_tokens is not None:
        for candidate in load_templates():
            if candidate.is_fim and not await split_markers(candidate, count_tokens):
                return TemplateChoice(candidate, f"tokenizer has {candidate.family} FIM tokens")
    return TemplateChoice(prefix_only, "no FIM tokens found for this model")


def _split_warning(template: FimTemplate, model: str, broken: list[str]) -> str:
    return (
        f"Model {model!r}: the {template.name} template's markers {', '.join(broken)} are not "
        "single tokens of the served tokenizer, so fill-in-the-middle prompts would be garbage."
    )
