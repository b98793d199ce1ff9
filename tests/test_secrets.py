"""Credential masking: what it masks, and that no text can make it slow (its scan is linear;
the regexes it replaced backtracked: 1,200 characters of "tokentoken..." took 5 s)."""

from __future__ import annotations

import pytest

from engine.repository.secrets import MASK, mask_credentials

MASKED = [
    ('password = "hunter22"', f'password = "{MASK}"'),
    ("API_KEY=abc123def456ghi", f"API_KEY={MASK}"),
    ('"client_secret": "s3cr3tvalue"', f'"client_secret": "{MASK}"'),
    ("Authorization: Bearer abcdefghijklmnop1234", f"Authorization: Bearer {MASK}"),
    ("key = AKIAABCDEFGHIJKLMNOP", f"key = {MASK}"),
    ("x = ghp_" + "a" * 36, f"x = {MASK}"),
    ("self.token = token_value_123", f"self.token = {MASK}"),
    ("token=abc123def456ghi+foo(", f"token={MASK}+foo("),
    # A value longer than any bounded read is masked to its end.
    ("token=" + "a1" * 400, f"token={MASK}"),
    ("-----BEGIN RSA PRIVATE KEY-----", MASK),
]
KEPT = [
    "auth = make_auth(x)",
    "AuthTypes = Union[str, int]",
    "token: Optional[str] = None",
    "secret_token = abcdefghijkl",  # no digit: a name, not a generated value
    'my_secret = "short"',
    "tokens = tokenize(text)",
]


@pytest.mark.parametrize(("line", "expected"), MASKED)
def test_credential_values_are_masked(line: str, expected: str):
    assert mask_credentials(line) == expected


@pytest.mark.parametrize("line", KEPT)
def test_code_that_only_names_credentials_is_kept(line: str):
    assert mask_credentials(line) == line


ATTACKS = {
    "a long word ending in a keyword": "a" * 200_000 + "token",
    "keywords back to back": "token" * 40_000,
    "assignments without values": "token = " * 25_000,
    "values that run into the next key": "token=" * 33_000,
    "keys before one long unmasked run": "token=" * 16_000 + "a" * 100_000 + "(",
    "quotes that never close": "password: '" * 18_000,
    "bearer without a value": "bearer " * 28_000,
    "key headers without an end": "-----BEGIN " * 18_000,
}


# A hang guard (a thread: a regex stuck in C never returns to a signal handler); linear,
# these take well under a second each.
@pytest.mark.timeout(20, method="thread")
@pytest.mark.parametrize("text", ATTACKS.values(), ids=ATTACKS.keys())
def test_no_text_makes_masking_backtrack(text: str):
    masked = mask_credentials(text)
    assert len(masked) <= len(text) + len(MASK) * text.count("=")
