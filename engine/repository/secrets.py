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
_CREDENTIAL_PATTERNS = [  # specific shapes first: the generic rule could mask only a prefix
    re.compile(r"(?P<value>AKIA[0-9A-Z]{16})"),  # AWS access key id
    re.compile(r"(?P<value>gh[pousr]_[A-Za-z0-9]{30,})"),  # GitHub tokens
    re.compile(r"(?P<value>xox[abposr]-[A-Za-z0-9-]{10,})"),  # Slack tokens
    re.compile(r"(?P<value>sk-[A-Za-z0-9_-]{20,})"),  # OpenAI-style keys
    re.compile(r"(?i)(?P<key>bearer\s+)(?P<value>[A-Za-z0-9._~+/-]{16,}=*)"),
    re.compile(r"(?P<value>-----BEGIN [A-Z ]*PRIVATE KEY-----)"),
    # key = "value" / key: value, for names that usually hold credentials: a quoted literal,
    # or a bare value that looks generated (letters and digits mixed, 12 or more). Code such
    # as `AuthTypes = Union[...]` is left alone.
    re.compile(
        r"""(?ix)
        (?P<key>[\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|
                 private[_-]?key|client[_-]?secret|auth)[\w.-]*)
        (?P<sep>["']?\s*[:=]\s*(?P<quote>["']))
        (?P<value>[^"'\s]{6,})(?=(?P=quote))
        """
    ),
    re.compile(
        r"""(?x)
        (?P<key>\b[\w.-]*(?i:password|passwd|secret|token|api[_-]?key|apikey|access[_-]?key|
                 private[_-]?key|client[_-]?secret)[\w.-]*)
        (?P<sep>\s*[:=]\s*)
        (?P<value>(?=[A-Za-z_\-+/=]*\d)(?=[\d_\-+/=]*[A-Za-z])[A-Za-z0-9_\-+/=]{12,})(?![\w(\[])
        """
    ),
]


@functools.lru_cache(maxsize=4096)  # asked on every keystroke; fnmatch over the list is slow
def is_denied(relative_path: str, extra_deny: tuple[str, ...] = ()) -> bool:
    name = PurePosixPath(relative_path).name
    return any(
        fnmatch(name, pattern) or fnmatch(relative_path, pattern)
        for pattern in (*DEFAULT_DENY, *extra_deny)
    )


def mask_credentials(text: str) -> str:
    if not _might_hold_credentials(text):
        return text
    for pattern in _CREDENTIAL_PATTERNS:
        text = pattern.sub(_masked, text)
    return text


def _masked(match: re.Match[str]) -> str:
    groups = match.groupdict()
    return (groups.get("key") or "") + (groups.get("sep") or "") + MASK


_QUICK = re.compile(r"(?i)pass|pwd|secret|token|key|auth|AKIA|gh[pousr]_|xox|sk-|bearer|BEGIN")


def _might_hold_credentials(text: str) -> bool:
    # One cheap scan first: most text holds no candidate at all.
    return _QUICK.search(text) is not None
