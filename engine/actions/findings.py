"""Find bugs: the answer's schema, a tolerant reader, and findings that go stale with edits.

The schema is sent to vLLM as structured output where the server takes it; the same model
validates every answer, because a server without structured outputs (or a model that wraps
the JSON in prose or a code fence) still answers in text."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.actions.fix import fenced_blocks
from engine.actions.types import Finding

# Bounds keep a constrained answer finite: diagnostics are short, and a model under a JSON
# grammar will otherwise fill a string to any length it is allowed.
MAX_FINDINGS = 20
MAX_MESSAGE = 300


class FindingModel(BaseModel):
    model_config = ConfigDict(extra="ignore")

    line: int = Field(ge=1, description="1-based first line of the problem")
    end_line: int | None = Field(default=None, ge=1, description="1-based last line")
    severity: Literal["error", "warning", "information", "hint"] = "warning"
    message: str = Field(min_length=1, max_length=MAX_MESSAGE)


class FindingsAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    findings: list[FindingModel] = Field(max_length=MAX_FINDINGS)


def findings_schema() -> dict[str, object]:
    return FindingsAnswer.model_json_schema()


class FindingsRejected(ValueError):
    """An answer that holds no valid findings object; the message says what was wrong."""


def read_findings(answer: str, first_line: int, last_line: int, line_count: int) -> list[Finding]:
    """Findings from ``answer``, as 0-based lines clamped to the file. ``first_line`` and
    ``last_line`` (0-based) bound the code that was asked about: findings outside it are
    dropped, since the model may only comment on what it was shown as the target."""
    payload = _json_payload(answer)
    try:
        parsed = FindingsAnswer.model_validate(payload)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "the answer"
        raise FindingsRejected(
            f"the findings do not match the schema: {where}: {problem['msg']}"
        ) from error
    findings: list[Finding] = []
    for item in parsed.findings:
        start = item.line - 1
        end = max(start, (item.end_line or item.line) - 1)
        if start > last_line or end < first_line or start >= line_count:
            continue
        findings.append(
            Finding(
                max(start, first_line),
                min(end, last_line, line_count - 1),
                item.severity,
                item.message.strip(),
            )
        )
    return findings


def _json_payload(answer: str) -> object:
    text = answer.strip()
    if not text:
        raise FindingsRejected("the answer was empty")
    candidates = [body for _, body in fenced_blocks(text)] + [text]
    brace = text.find("{")
    if brace != -1:
        candidates.append(text[brace : text.rfind("}") + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate, strict=False)
        except json.JSONDecodeError:
            continue
    if re.search(r"\{", text) and not re.search(r"\}\s*$", text):
        raise FindingsRejected("the JSON answer was cut short")
    raise FindingsRejected("the answer holds no JSON object")


@dataclass
class PublishedFinding:
    finding: Finding
    # The text of the lines it points at, to tell when they change.
    lines: tuple[str, ...]


@dataclass
class FindingsStore:
    """Findings per document; those whose lines changed are dropped, the rest follow edits."""

    by_uri: dict[str, list[PublishedFinding]] = field(default_factory=dict)

    def publish(self, uri: str, text: str, findings: Iterable[Finding], replace: bool) -> None:
        lines = text.split("\n")
        fresh = [PublishedFinding(f, tuple(lines[f.start_line : f.end_line + 1])) for f in findings]
        self.by_uri[uri] = fresh if replace else [*self.by_uri.get(uri, []), *fresh]

    def get(self, uri: str) -> list[Finding]:
        return [p.finding for p in self.by_uri.get(uri, [])]

    def forget(self, uri: str) -> None:
        self.by_uri.pop(uri, None)

    def reconcile(self, uri: str, text: str) -> bool:
        """After an edit: keep findings whose lines are unchanged (found again near where they
        were, as lines above may have moved), drop the rest. True when anything changed."""
        published = self.by_uri.get(uri)
        if not published:
            return False
        lines = text.split("\n")
        kept: list[PublishedFinding] = []
        changed = False
        for item in published:
            at = _locate(lines, item.lines, item.finding.start_line)
            if at is None:
                changed = True
                continue
            if at != item.finding.start_line:
                changed = True
                span = item.finding.end_line - item.finding.start_line
                moved = Finding(at, at + span, item.finding.severity, item.finding.message)
                item = PublishedFinding(moved, item.lines)
            kept.append(item)
        self.by_uri[uri] = kept
        return changed


def _locate(lines: list[str], block: tuple[str, ...], near: int) -> int | None:
    if not block:
        return None
    for distance in range(len(lines)):
        for at in (near - distance, near + distance) if distance else (near,):
            if 0 <= at <= len(lines) - len(block) and tuple(lines[at : at + len(block)]) == block:
                return at
        if distance > 2000:
            break
    return None
