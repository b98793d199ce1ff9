"""The text before and after the cursor, cut to fit the prompt budget at line boundaries."""

from __future__ import annotations

from dataclasses import dataclass

from engine.completion.types import CompletionRequest

# Until issue 3 counts tokens with the served tokenizer, budget with a cautious estimate:
# code runs about 3-4 characters a token; 3 over-counts tokens, so prompts stay under budget.
CHARS_PER_TOKEN_ESTIMATE = 3
SUFFIX_SHARE = 0.25


@dataclass(frozen=True)
class CursorContext:
    prefix: str
    suffix: str
    # The current line, split at the cursor: the post-processing stage decides line modes on it.
    line_prefix: str
    line_suffix: str
    language_id: str
    relative_path: str | None
    workspace_name: str | None


def build_cursor_context(request: CompletionRequest, token_budget: int) -> CursorContext:
    text, cursor = request.text, request.cursor
    char_budget = max(token_budget, 1) * CHARS_PER_TOKEN_ESTIMATE
    suffix_budget = int(char_budget * SUFFIX_SHARE)
    prefix_budget = char_budget - suffix_budget

    line_start = text.rfind("\n", 0, cursor) + 1
    line_end = text.find("\n", cursor)
    line_end = len(text) if line_end == -1 else line_end

    return CursorContext(
        prefix=_keep_tail_lines(text[:cursor], prefix_budget),
        suffix=_keep_head_lines(text[cursor:], suffix_budget),
        line_prefix=text[line_start:cursor],
        line_suffix=text[cursor:line_end],
        language_id=request.language_id,
        relative_path=request.relative_path,
        workspace_name=request.workspace_name,
    )


def _keep_tail_lines(prefix: str, budget: int) -> str:
    """The last ``budget`` characters, starting at a line start so no line is cut in half."""
    if len(prefix) <= budget:
        return prefix
    start = len(prefix) - budget
    next_line = prefix.find("\n", start)
    # A single line longer than the budget: cut it, the cursor's line must stay.
    return prefix[next_line + 1 :] if next_line != -1 else prefix[start:]


def _keep_head_lines(suffix: str, budget: int) -> str:
    if len(suffix) <= budget:
        return suffix
    end = suffix.rfind("\n", 0, budget)
    return suffix[: end + 1] if end > 0 else suffix[:budget]
