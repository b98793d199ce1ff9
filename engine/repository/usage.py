"""Which names a file uses, in order of first use and by blocks of lines: read from the text
with one linear regex (no tree, no backtracking), so it is cheap enough for every keystroke's
pause."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from engine.repository.symbols import IDENTIFIER, ImportBinding

# Scanning stops here: a huge generated file's names past this point change nothing useful.
MAX_SCANNED_CHARS = 400_000
MAX_USES = 4000
_CHAIN = 4
# Uses are also grouped by blocks of this many lines: what the code around the cursor uses.
BLOCK_LINES = 32


@dataclass(frozen=True)
class NameUsage:
    """A file's uses of names, in order of first use: ``"name"`` or ``"object.attribute"``
    (object possibly dotted: ``"a.b.attr"``). A name an import binds counts from its first use
    after the import, so import order does not decide what comes first."""

    uses: tuple[str, ...] = ()
    # Per block of BLOCK_LINES lines, the uses in it.
    blocks: tuple[frozenset[str], ...] = ()
    # Names the text annotates with a type (`value: &Value`, Go's `c *Command`), in the
    # languages of ANNOTATED: the first annotation of each, so `value.as_bool()` is Value's.
    types: tuple[tuple[str, str], ...] = ()

    @cached_property
    def _type_by_name(self) -> dict[str, str]:
        return dict(self.types)

    def type_of(self, name: str) -> str | None:
        return self._type_by_name.get(name)

    def near(self, line: int, reach: int = 1) -> frozenset[str]:
        """Uses in the cursor's block and ``reach`` blocks on either side of it."""
        block = line // BLOCK_LINES
        found: set[str] = set()
        for index in range(max(0, block - reach), min(len(self.blocks), block + reach + 1)):
            found |= self.blocks[index]
        return frozenset(found)


MAX_TYPES = 400
# Where a written type sends `value.method` to that type's member (engine.definitions.needed).
# Not Python and TypeScript: measured there, the extra members took the budget from
# declarations that were used (one to two names fewer in three of seven repositories at 2,048
# tokens), so their texts are not scanned for annotations at all.
ANNOTATED = frozenset({"go", "rust", "java", "c", "cpp"})
_TYPE_PREFIXES = ("&", "*", "mut ", "dyn ", "impl ", "const ")


def annotated_type(text: str, end: int, go_style: bool) -> str | None:
    """The type annotating the name that ends at ``end``: ``: Type`` (``&``, ``&'a mut``,
    ``dyn`` skipped) or, in Go, `` Type`` / `` *Type``. Only a capitalized name counts (a
    class or struct). A bounded look ahead, no regex: linear in the text."""
    limit = min(len(text), end + 80)
    at = end
    while at < limit and text[at] == " ":
        at += 1
    if at < limit and text[at] == ":" and text[at + 1 : at + 2] != ":":
        at += 1
    elif not go_style or at == end:
        return None
    for _ in range(4):
        while at < limit and text[at] == " ":
            at += 1
        if at < limit and text[at] == "'":  # a Rust lifetime
            while at < limit and text[at] not in " ,)>":
                at += 1
            continue
        prefix = next((p for p in _TYPE_PREFIXES if text.startswith(p, at)), None)
        if prefix is None:
            break
        at += len(prefix)
    match = IDENTIFIER.match(text, at, limit)
    if match is None or not match.group()[:1].isupper():
        return None
    return match.group()


def name_usage(
    text: str, bindings: tuple[ImportBinding, ...] = (), language: str | None = None
) -> NameUsage:
    imported = {b.local for b in bindings}
    types: dict[str, str] = {}
    annotated = language in ANNOTATED
    go_style = language == "go"
    first: dict[str, int] = {}
    late: dict[str, int] = {}  # imported names: their second sighting (the first is the import)
    seen_once: set[str] = set()
    chain: list[str] = []
    chain_end = -1
    position = 0
    blocks: list[set[str]] = [set()]
    line, counted_to = 0, 0
    for match in IDENTIFIER.finditer(text, 0, min(len(text), MAX_SCANNED_CHARS)):
        name, start = match.group(), match.start()
        line += text.count("\n", counted_to, start)
        counted_to = start
        while len(blocks) <= line // BLOCK_LINES:
            blocks.append(set())
        block = blocks[line // BLOCK_LINES]
        # `a.b` and, in Rust and C++, `Type::new`: one chain, written with a dot.
        if chain and (
            (start == chain_end + 1 and text[chain_end] == ".")
            or (start == chain_end + 2 and text[chain_end:start] == "::")
        ):
            chain.append(name)
            if len(chain) > _CHAIN:
                chain.pop(0)
            dotted = ".".join(chain[:-1]) + "." + name
            first.setdefault(dotted, position)
            if len(block) < MAX_USES:
                block.add(dotted)
        else:
            if len(block) < MAX_USES:
                block.add(name)
            chain = [name]
            if annotated and name not in types and len(types) < MAX_TYPES:
                kind = annotated_type(text, match.end(), go_style)
                if kind is not None and kind != name:
                    types[name] = kind
            if name in imported and name not in seen_once:
                seen_once.add(name)
            elif name in imported:
                late.setdefault(name, position)
            else:
                first.setdefault(name, position)
        chain_end = match.end()
        position += 1
        if len(first) + len(late) >= MAX_USES:
            break
    for name in imported:
        if name not in late and name in seen_once:
            late[name] = position  # imported, never used: after every use
    order = sorted([*first.items(), *late.items()], key=lambda item: item[1])
    return NameUsage(
        tuple(dict.fromkeys(name for name, _ in order)),
        tuple(frozenset(b) for b in blocks),
        tuple(types.items()),
    )
