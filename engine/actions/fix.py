"""Turning a model's fix into an edit that applies cleanly and parses.

The answer is either a replacement for the selection in a fenced code block, or a unified
diff. A diff is applied by content (models get hunk line numbers wrong more often than the
lines themselves); anything that does not apply, changes nothing, or adds syntax errors is
refused with a reason the model (on retry) and the user can read."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import whatthepatch
from tree_sitter import Node

from engine.actions.types import TextEdit
from engine.repository.headers import parse
from engine.repository.languages import language_for

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<ticks>`{3,}|~{3,})[^\n]*\n", re.MULTILINE)


class FixRejected(ValueError):
    """Why an answer cannot become an edit, in words fit for the user and for a retry prompt."""


@dataclass(frozen=True)
class Proposal:
    kind: str  # "replacement" or "diff"
    body: str


def fix_schema(selection_chars: int) -> dict[str, object]:
    """The structured-output shape of a fix (``actions.structured_fix``): the replacement as
    one JSON string, bounded so that a constrained model cannot run on forever."""
    return {
        "type": "object",
        "properties": {
            "replacement": {"type": "string", "maxLength": max(400, 4 * selection_chars)}
        },
        "required": ["replacement"],
        "additionalProperties": False,
    }


def read_proposal(answer: str) -> Proposal:
    """The code block or diff in ``answer``; FixRejected when there is neither."""
    if not answer.strip():
        raise FixRejected("the answer was empty")
    structured = _structured_replacement(answer)
    if structured is not None:
        return Proposal("diff" if _looks_like_diff(structured) else "replacement", structured)
    blocks = fenced_blocks(answer)
    for info, body in blocks:
        if info.strip().lower() in ("diff", "patch", "udiff") or _looks_like_diff(body):
            return Proposal("diff", body)
    if blocks:
        return Proposal("replacement", blocks[0][1])
    if _looks_like_diff(answer):
        return Proposal("diff", answer)
    if _FENCE.search(answer):
        raise FixRejected("the code block was never closed (the answer may have been cut)")
    raise FixRejected("the answer holds no code block")


def _structured_replacement(answer: str) -> str | None:
    text = answer.strip()
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text, strict=False)  # raw tabs and newlines in strings: tolerated
    except json.JSONDecodeError as error:
        raise FixRejected(f"the JSON answer is not valid JSON ({error.msg})") from error
    if not isinstance(value, dict) or not isinstance(value.get("replacement"), str):
        raise FixRejected("the JSON answer has no 'replacement' text")
    replacement: str = value["replacement"]
    return replacement


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(info string, body) of each closed fenced block, in order."""
    blocks: list[tuple[str, str]] = []
    position = 0
    while (opening := _FENCE.search(text, position)) is not None:
        ticks = opening.group("ticks")
        info = text[opening.start() : opening.end()].strip()[len(ticks) :]
        closing = re.compile(rf"^[ \t]*{re.escape(ticks)}[ \t]*$", re.MULTILINE)
        end = closing.search(text, opening.end())
        if end is None:
            break
        blocks.append((info, text[opening.end() : end.start()]))
        position = end.end()
    return blocks


def build_edit(
    proposal: Proposal, text: str, start: int, end: int, path: str, language_id: str
) -> TextEdit:
    """The edit for ``text`` (selection ``start:end``; whole file when empty), checked."""
    if proposal.kind == "diff":
        edit = _edit_from_diff(proposal.body, text)
    else:
        if start == end:
            start, end = 0, len(text)
        edit = TextEdit(start, end, _fit_replacement(proposal.body, text, start, end))
    if text[edit.start : edit.end] == edit.new_text:
        raise FixRejected("the proposed code is the same as the current code")
    check_syntax(text, edit, path, language_id)
    return edit


def check_syntax(text: str, edit: TextEdit, path: str, language_id: str) -> None:
    """Refuse an edit that leaves more syntax errors than the file had (languages we parse)."""
    language = language_for(path, language_id)
    if language is None:
        return
    after = text[: edit.start] + edit.new_text + text[edit.end :]
    before_errors = _error_lines(language, text)
    after_errors = _error_lines(language, after)
    if len(after_errors) > len(before_errors):
        lines = ", ".join(str(n + 1) for n in after_errors[:3])
        raise FixRejected(f"the fixed file does not parse as {language} (near line {lines})")


def _error_lines(language: str, text: str) -> list[int]:
    tree = parse(language, text.encode("utf-8"))
    found: list[int] = []

    def walk(node: Node) -> None:
        if node.type == "ERROR" or node.is_missing:
            found.append(node.start_point.row)
            return
        if node.has_error:
            for child in node.children:
                walk(child)

    walk(tree.root_node)
    return found


def _fit_replacement(body: str, text: str, start: int, end: int) -> str:
    """The replacement with the selection's indentation and trailing newline, which models
    tend to drop."""
    original = text[start:end]
    replacement = body
    line_start = text.rfind("\n", 0, start) + 1
    indent = re.match(r"[ \t]*", text[line_start:])
    base = indent.group(0) if indent else ""
    first_code = next((ln for ln in replacement.splitlines() if ln.strip()), "")
    if base and start == line_start and not first_code.startswith(base):
        replacement = "\n".join(base + ln if ln.strip() else ln for ln in replacement.split("\n"))
    elif start > line_start:
        replacement = replacement.lstrip(" \t")  # the selection starts mid-line
    if original.endswith("\n") and not replacement.endswith("\n"):
        replacement += "\n"
    elif not original.endswith("\n") and replacement.endswith("\n"):
        replacement = replacement.rstrip("\n")
    return replacement


def _looks_like_diff(body: str) -> bool:
    return bool(re.search(r"^@@ .* @@", body, re.MULTILINE)) and bool(
        re.search(r"^[-+]", body, re.MULTILINE)
    )


def _edit_from_diff(body: str, text: str) -> TextEdit:
    patches = [p for p in whatthepatch.parse_patch(body) if p.changes]
    if not patches:
        raise FixRejected("the diff has no hunks")
    if len(patches) > 1:
        raise FixRejected("the diff changes more than one file")
    lines = text.split("\n")
    hunks: dict[int, list[whatthepatch.patch.Change]] = {}
    for change in patches[0].changes:
        hunks.setdefault(change.hunk, []).append(change)
    replacements: list[tuple[int, int, list[str]]] = []
    searched_from = 0
    for number, changes in sorted(hunks.items()):
        old = [c.line for c in changes if c.old is not None]
        new = [c.line for c in changes if c.new is not None]
        stated = next((c.old for c in changes if c.old is not None), 1) - 1
        at = _find_block(lines, old, stated, searched_from)
        if at is None:
            raise FixRejected(
                f"hunk {number} of the diff does not apply: its lines are not in the file"
            )
        replacements.append((at, at + len(old), new))
        searched_from = at + len(old)
    for first, last, new in reversed(replacements):
        lines[first:last] = new
    patched = "\n".join(lines)
    # One edit over the changed span keeps the editor's undo to a single step.
    prefix = _common_prefix(text, patched)
    suffix = _common_suffix(text[prefix:], patched[prefix:])
    return TextEdit(prefix, len(text) - suffix, patched[prefix : len(patched) - suffix])


def _find_block(lines: list[str], block: list[str], near: int, start: int) -> int | None:
    if not block:
        return min(max(near, start), len(lines))
    candidates = [
        i for i in range(start, len(lines) - len(block) + 1) if lines[i : i + len(block)] == block
    ]
    return min(candidates, key=lambda i: abs(i - near)) if candidates else None


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _common_suffix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(reversed(a), reversed(b), strict=False):
        if x != y:
            break
        n += 1
    return n
