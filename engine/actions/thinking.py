"""Separating a reasoning model's thinking from its answer.

Three shapes reach us: vLLM with a reasoning parser sends the thinking in its own field; without
one it stays in the content as ``<think>…</think>``; and chat templates that open ``<think>`` in
the prompt (Qwen3 style) leave only the closing tag in the output."""

from __future__ import annotations

from dataclasses import dataclass, field

OPEN = "<think>"
CLOSE = "</think>"


@dataclass
class ThinkingSplitter:
    reasoning: list[str] = field(default_factory=list)
    content: list[str] = field(default_factory=list)
    _tail: str = ""

    def feed(self, reasoning: str, content: str) -> None:
        if reasoning:
            self.reasoning.append(reasoning)
        if content:
            self.content.append(content)
            self._tail = (self._tail + content)[-64:]

    @property
    def thinking_now(self) -> bool:
        """Whether the stream is still inside the reasoning (for progress messages)."""
        if not self.content:
            return bool(self.reasoning)
        return self._tail.rfind(OPEN) > self._tail.rfind(CLOSE)

    def split(self) -> tuple[str, str, bool]:
        """(thinking, answer, closed): ``closed`` is False when the content opened a
        ``<think>`` that never closed, so the answer may be missing."""
        text = "".join(self.content)
        thinking = "".join(self.reasoning)
        close = text.rfind(CLOSE)
        if close != -1:
            inner = text[:close]
            opened = inner.find(OPEN)
            inner = inner[opened + len(OPEN) :] if opened != -1 else inner
            return _join(thinking, inner), text[close + len(CLOSE) :].strip(), True
        opened = text.find(OPEN)
        if opened != -1:
            return _join(thinking, text[opened + len(OPEN) :]), text[:opened].strip(), False
        return thinking.strip(), text.strip(), True


def _join(first: str, second: str) -> str:
    return "\n".join(part.strip() for part in (first, second) if part.strip())
