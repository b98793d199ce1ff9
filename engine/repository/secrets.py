"""Keeping secrets out of prompts: files that hold them are never read, and lines that look
like credentials are masked wherever they appear."""

from __future__ import annotations

import functools
import re
from fnmatch import fnmatch
from pathlib import PurePosixPath

# File names never indexed nor completed in (matched against the name and the relative path).
DEFAULT_DENY = (
    ".env",
    ".env.*",
    "*.env",
    ".envrc",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.crt",
    "*.cer",
    "*.der",
    "*.jks",
    "*.keystore",
    "*.kdbx",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    ".netrc",
    ".npmrc",
    ".pypirc",
    ".git-credentials",
    ".htpasswd",
    "credentials*",
    "*secret*.json",
    "*secrets*.y*ml",
    "*.tfstate",
    "*.tfvars",
)

MASK = "«masked»"
# Credentials of a known shape. Each pattern starts with a literal and has one repetition
# after it, so an attempt costs at most the run it reads and the whole scan stays linear.
_SHAPED = [  # specific shapes first: the generic rule could mask only a prefix
    re.compile(r"(?P<value>AKIA[0-9A-Z]{16})"),  # AWS access key id
    re.compile(r"(?P<value>gh[pousr]_[A-Za-z0-9]{30,})"),  # GitHub tokens
    re.compile(r"(?P<value>xox[abposr]-[A-Za-z0-9-]{10,})"),  # Slack tokens
    re.compile(r"(?P<value>sk-[A-Za-z0-9_-]{20,})"),  # OpenAI-style keys
    re.compile(r"(?i)(?P<key>bearer\s+)(?P<value>[A-Za-z0-9._~+/-]{16,}=*)"),
    re.compile(r"(?P<value>-----BEGIN [A-Z ]{0,40}PRIVATE KEY-----)"),
]
# ``key = "value"`` and ``key: value`` for names that usually hold credentials. Found without
# a regex over the key (``[\w.-]*(password|...)[\w.-]*`` backtracks: a 1,200-character line
# of "tokentoken..." took seconds): each word is read once, and only a word naming a
# credential is checked for a separator and a value right after it, anchored there.
_WORD = re.compile(r"[\w.-]+")
_QUOTED_KEYWORDS = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "api_key",
    "api-key",
    "apikey",
    "access_key",
    "access-key",
    "private_key",
    "private-key",
    "client_secret",
    "client-secret",
    "auth",
)
# A bare value is masked for fewer names (not "auth": `auth = make_auth(...)` is code).
_BARE_KEYWORDS = tuple(k for k in _QUOTED_KEYWORDS if k not in ("pwd", "auth"))
# After the key: an optional closing quote (JSON keys), the separator, then a quoted value...
_QUOTED_VALUE = re.compile(r"""["']?\s*[:=]\s*(["'])([^"'\s]{6,})(?=\1)""")
# ...or a bare one that looks generated: letters and digits mixed, 12 or more, not a call.
# Its characters include "=", so in "token=token=..." every key's value would run to the end
# of the line: each run of value characters is measured once (_ValueRun) and shared by the
# keys inside it.
_SEPARATOR = re.compile(r"\s*[:=]\s*")
_VALUE_RUN = re.compile(r"[A-Za-z0-9_\-+/=]*")
_BARE_MIN = 12


@functools.lru_cache(maxsize=4096)  # asked on every keystroke; fnmatch over the list is slow
def is_denied(relative_path: str, extra_deny: tuple[str, ...] = ()) -> bool:
    name = PurePosixPath(relative_path).name
    return any(
        fnmatch(name, pattern) or fnmatch(relative_path, pattern)
        for pattern in (*DEFAULT_DENY, *extra_deny)
    )


def mask_credentials(text: str) -> str:
    """``text`` with credential values replaced by MASK, in time linear in its length."""
    if not _might_hold_credentials(text):
        return text
    for pattern in _SHAPED:
        text = pattern.sub(_masked, text)
    return _mask_assignments(text)


def _masked(match: re.Match[str]) -> str:
    return (match.groupdict().get("key") or "") + MASK


def _mask_assignments(text: str) -> str:
    pieces: list[str] = []
    kept_to = 0
    run = _ValueRun()
    for word in _WORD.finditer(text):
        if word.start() < kept_to:
            continue  # inside a value masked already
        lowered = word.group().lower()
        if not any(k in lowered for k in _QUOTED_KEYWORDS):
            continue
        quoted = _QUOTED_VALUE.match(text, word.end())
        if quoted is not None:
            value = quoted.span(2)
        elif any(k in lowered for k in _BARE_KEYWORDS):
            separator = _SEPARATOR.match(text, word.end())
            found = (
                run.bare_value(text, separator.end())
                if separator and separator.end() > word.end()
                else None
            )
            if found is None:
                continue
            value = found
        else:
            continue
        if value[0] < kept_to:
            continue
        pieces += [text[kept_to : value[0]], MASK]
        kept_to = value[1]
    if not pieces:
        return text
    pieces.append(text[kept_to:])
    return "".join(pieces)


class _ValueRun:
    """The run of value characters around a position, measured once for all the keys in it:
    where it ends, and where its last separator-like character, digit and letter are."""

    def __init__(self) -> None:
        self.start = self.end = -1
        self.last_mark = self.last_digit = self.last_letter = -1

    def bare_value(self, text: str, at: int) -> tuple[int, int] | None:
        """The span a generated-looking value starting at ``at`` takes (as the regex
        ``[A-Za-z0-9_\\-+/=]{12,}(?![\\w(\\[])`` with lookaheads for a digit and a letter would
        match it), or None."""
        if not self.start <= at < self.end:
            self._measure(text, at)
        if self.end - at < _BARE_MIN or self.last_digit < at or self.last_letter < at:
            return None
        after = text[self.end : self.end + 1]
        if not (after.isalnum() or after in ("_", "(", "[")):
            return at, self.end
        # Otherwise the value ends before its last "-", "+", "/" or "=" (a word character or a
        # call follows the run).
        if self.last_mark >= at + _BARE_MIN:
            return at, self.last_mark
        return None

    def _measure(self, text: str, at: int) -> None:
        self.start, self.end = at, _VALUE_RUN.match(text, at).end()  # type: ignore[union-attr]
        self.last_mark = self.last_digit = self.last_letter = -1
        for position in range(self.end - 1, at - 1, -1):
            char = text[position]
            if char.isdigit():
                self.last_digit = max(self.last_digit, position)
            elif char in "-+/=":
                self.last_mark = max(self.last_mark, position)
            elif char != "_":
                self.last_letter = max(self.last_letter, position)
            if min(self.last_digit, self.last_mark, self.last_letter) >= 0:
                break


_QUICK = re.compile(r"(?i)pass|pwd|secret|token|key|auth|AKIA|gh[pousr]_|xox|sk-|bearer|BEGIN")


def _might_hold_credentials(text: str) -> bool:
    # One cheap scan first: most text holds no candidate at all.
    return _QUICK.search(text) is not None
