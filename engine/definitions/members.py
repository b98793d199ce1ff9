"""A class's other members, one signature line each, under its head: when a file calls some
of a class's methods, the next line often calls another (`app.test_client()` after
`app.route(...)`), and a large class's first lines rarely list them."""

from __future__ import annotations

import posixpath

from engine.definitions.needed import go_receiver
from engine.repository.definitions import Located
from engine.repository.index import RepositoryIndex
from engine.repository.symbols import Definition, declared_private, public_member

# Signature lines listed per type, the most mentioned across the repository first: this many
# per TIER_TOKENS_PER_SIX of the tier's budget (six at a 2,048-token prompt, twelve at 4,096).
MEMBER_LINES = 6
TIER_TOKENS_PER_SIX = 1024
# A signature written over several lines is joined up to this many, then clipped.
SIGNATURE_LINES = 3
SIGNATURE_CHARS = 120


# Per Go type: its methods declared anywhere in its package, with where (file rank, line).
GoMethods = dict[str, list[tuple[tuple[int, int], str, Definition]]]


def go_methods(index: RepositoryIndex, path: str) -> GoMethods:
    """The methods of ``path``'s Go package by receiver type, in one pass over its non-test
    files: a package of many files is read once, not once per type."""
    found: GoMethods = {}
    for rank, file in enumerate(_package_files(index, path)):
        header = index.header(file)
        for definition in header.definitions if header is not None else ():
            receiver = go_receiver(definition.text)
            if receiver is not None:
                found.setdefault(receiver, []).append(((rank, definition.line), file, definition))
    return found


def member_index(
    index: RepositoryIndex,
    owner: Located,
    head: str,
    skip: set[str],
    methods: GoMethods | None = None,
    tier_budget: int = TIER_TOKENS_PER_SIX,
) -> str:
    """Members declared in ``owner``'s class body that neither ``head`` (the class's lines
    shown) nor ``skip`` (members shown on their own) holds, one line each, the most mentioned
    across the repository first (listed in the file's order), as many as ``tier_budget`` (the
    repository tier's) affords; empty when there are none.

    Only a body's members: a Rust type's ``impl`` methods listed this way took the budget of
    the definitions the next line needed (types used as data, matched on: recall 76% -> 68%
    on the Rust repositories of bench/context_recall.py)."""
    header = index.header(owner.path)
    if header is None:
        return ""
    name = owner.definition.name
    head_lines = set(head.split("\n"))
    candidates: dict[str, tuple[tuple[int, int], Located]] = {}
    # A name's first declaration decides (an overload the head shows stands for the rest).
    seen: set[str] = set()

    def consider(path: str, definition: Definition, order: tuple[int, int]) -> None:
        if definition.name in seen:
            return
        seen.add(definition.name)
        if (
            definition.name not in skip
            and public_member(definition.name)
            and not declared_private(definition.text)
            and signature(definition.text) not in head
            # Its first line is shown (clipped as the class text clips it): a long
            # ``__init__`` signature joined differently would be listed twice.
            and definition.text.split("\n", 1)[0] not in head_lines
            # Another file mentions it: a member only its own file calls is no one's next line.
            and index.mentioned(definition.name) >= 2
        ):
            candidates[definition.name] = (order, Located(path, definition))

    for definition in header.definitions:
        if definition.container == name and definition.opener in head_lines:
            consider(owner.path, definition, (0, definition.line))
    if header.language == "go" and owner.definition.text.startswith("type "):
        # A Go type's methods are declared beside it, in any file of its package
        # (``methods``: the package's, when the caller read them already).
        if methods is None:
            methods = go_methods(index, owner.path)
        for (rank, line), path, definition in methods.get(name, ()):
            consider(path, definition, (rank + 1, line))
    ranked = sorted(
        candidates.values(),
        key=lambda item: (-index.mentioned(item[1].definition.name), item[0]),
    )[: max(MEMBER_LINES, MEMBER_LINES * tier_budget // TIER_TOKENS_PER_SIX)]
    ranked.sort(key=lambda item: item[0])
    return "\n".join(signature(located.definition.text) for _, located in ranked)


def _package_files(index: RepositoryIndex, path: str) -> list[str]:
    """The non-test files of ``path``'s Go package, in path order (whichever file asks)."""
    files = index.resolver().files_in(posixpath.dirname(path))
    return sorted(p for p in files if not p.endswith("_test.go"))


def signature(text: str) -> str:
    """A member's signature on one line: lines joined until its parentheses close."""
    lines = text.split("\n")
    joined = lines[0].rstrip()
    for line in lines[1:SIGNATURE_LINES]:
        if joined.count("(") <= joined.count(")"):
            break
        joined += " " + line.strip()
    if len(joined) > SIGNATURE_CHARS:
        joined = joined[: SIGNATURE_CHARS - 1] + "…"
    return joined
