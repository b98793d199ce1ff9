"""Which names a file uses, in order of first use and by blocks of lines: read from the text
with one linear regex (no tree, no backtracking), so it is cheap enough for every keystroke's
pause."""

from __future__ import annotations

from dataclasses import dataclass

from engine.repository.symbols import IDENTIFIER, ImportBinding

# Scanning stops here: a huge generated file's names past this point change nothing useful.
MAX_SCANNED_CHARS = 400_000
MAX_USES = 4000
_CHAIN = 4
# Uses are also grouped by blocks of this many lines: what the code around the cursor uses.
BLOCK_LINES = 64


@dataclass(frozen=True)
class NameUsage:
    """A file's uses of names, in order of first use: ``"name"`` or ``"object.attribute"``
    (object possibly dotted: ``"a.b.attr"``). A name an import binds counts from its first use
    after the import, so import order does not decide what comes first."""

    uses: tuple[str, ...] = ()
    # Per block of BLOCK_LINES lines, the uses in it.
    blocks: tuple[frozenset[str], ...] = ()

    def near(self, line: int) -> frozenset[str]:
        """Uses in the cursor's block and the blocks on either side of it."""
        block = line // BLOCK_LINES
        found: set[str] = set()
        for index in range(max(0, block - 1), min(len(self.blocks), block + 2)):
            found |= self.blocks[index]
        return frozenset(found)


def name_usage(text: str, bindings: tuple[ImportBinding, ...] = ()) -> NameUsage:
    imported = {b.local for b in bindings}
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
        if chain and start == chain_end + 1 and text[chain_end] == ".":
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
        tuple(dict.fromkeys(name for name, _ in order)), tuple(frozenset(b) for b in blocks)
    )
