"""Chat prompts for the actions, from ``prompts/actions/*.toml``.

Order, most stable first: the shared system message, the repository context (the completion
prompts' canonical tier), the current file, and only then what differs per action. So every
action on a file shares one cached prefix in vLLM, whichever action it is."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from engine.actions.types import ActionKind, ActionRequest
from engine.backends.chat import ChatMessage
from engine.definitions.tier import ContextEntry
from engine.repository.secrets import mask_credentials

# Actions show whole stretches of a file: a character estimate is enough to stay in budget.
CHARS_PER_TOKEN = 3.5


@dataclass(frozen=True)
class ActionPrompts:
    common: dict[str, str]
    targets: dict[str, str]
    per_action: dict[ActionKind, dict[str, str]]


@cache
def load_prompts() -> ActionPrompts:
    folder = resources.files("prompts").joinpath("actions")

    def read(name: str) -> dict[str, str]:
        data = tomllib.loads(folder.joinpath(f"{name}.toml").read_text(encoding="utf-8"))
        return {key: str(value) for key, value in data.items()}

    return ActionPrompts(
        common=read("common"),
        targets=read("targets"),
        per_action={kind: read(kind.value) for kind in ActionKind},
    )


def build_messages(
    request: ActionRequest,
    workspace_name: str | None,
    repository: tuple[ContextEntry, ...],
    budget_tokens: int,
) -> tuple[ChatMessage, ...]:
    prompts = load_prompts()
    common = prompts.common
    path = request.relative_path or (request.path.name if request.path else request.document_uri)
    fence = request.language_id if request.language_id.isidentifier() else ""
    parts: list[str] = []
    if repository:
        parts.append(common["repository_intro"].format(repo=workspace_name or "workspace"))
        parts.extend(
            common["repository_file"].format(path=entry.path, header=entry.text.rstrip("\n"))
            for entry in repository
        )
    lines = request.text.splitlines()
    first_line = request.text.count("\n", 0, request.start)
    last_line = max(first_line, request.text.count("\n", 0, max(request.start, request.end - 1)))
    low, high = excerpt_lines(lines, first_line, last_line, int(budget_tokens * CHARS_PER_TOKEN))
    numbered = "\n".join(f"{n + 1:>5}| {lines[n]}" for n in range(low, high + 1))
    if (low, high) != (0, len(lines) - 1):
        parts.append(common["excerpt_note"].format(first=low + 1, last=high + 1, total=len(lines)))
    parts.append(
        common["current_file"].format(
            path=path, language=request.language_id, fence=fence, code=mask_credentials(numbered)
        )
    )
    target = (
        prompts.targets["whole_file"].format(path=path)
        if request.whole_file and (low, high) == (0, max(0, len(lines) - 1))
        else prompts.targets["selection"].format(
            first=first_line + 1,
            last=last_line + 1,
            path=path,
            fence=fence,
            code=mask_credentials(
                request.text if request.whole_file else request.text[request.start : request.end]
            ),
        )
    )
    action = prompts.per_action[request.kind]
    problem = (
        action.get("problem", "").format(problem=request.question)
        if request.kind is ActionKind.FIX and request.question
        else ""
    )
    parts.append(
        action["instruction"].format(
            target=target, question=request.question or "", problem=problem
        )
    )
    return (
        ChatMessage("system", common["system"]),
        ChatMessage("user", "\n".join(parts)),
    )


def retry_message(error: str) -> ChatMessage:
    return ChatMessage(
        "user", load_prompts().per_action[ActionKind.FIX]["retry"].format(error=error)
    )


def excerpt_lines(lines: list[str], first: int, last: int, budget_chars: int) -> tuple[int, int]:
    """The widest span of whole lines around ``first..last`` within ``budget_chars``, growing
    both ways in turn; the selection itself is always kept."""
    if not lines:
        return 0, 0
    last = min(last, len(lines) - 1)
    first = min(first, last)
    low, high = first, last
    used = sum(len(lines[n]) + 8 for n in range(low, high + 1))
    grew = True
    while grew:
        grew = False
        for candidate in (low - 1, high + 1):
            if 0 <= candidate < len(lines) and used + len(lines[candidate]) + 8 <= budget_chars:
                used += len(lines[candidate]) + 8
                low, high = min(low, candidate), max(high, candidate)
                grew = True
    return low, high
