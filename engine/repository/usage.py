"""Which names a file uses, in order of first use and by blocks of lines: read from the text
with one linear regex (no tree, no backtracking), so it is cheap enough for every keystroke's
pause."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from engine.repository.languages import C_FAMILY
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
    # Names the text annotates with a type or assigns an instance to (`value: &Value`, Go's
    # `c *Command`, `app = Flask(...)`, `self.console = Console()`), in the languages of
    # ANNOTATED: the first of each, so `value.as_bool()` is Value's.
    types: tuple[tuple[str, str], ...] = ()
    # Names the file imports and uses nowhere else yet: the names its next lines will use.
    unused_imports: tuple[str, ...] = ()

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
# Where a written or constructed type (`value: Value`, `app = Flask(...)`, `self.console =
# Console()`) sends `value.method` to that type's member (engine.definitions.needed). Python
# and TypeScript joined with the 32-line ranking of issue 29 (measured: equal or one name up
# per repository; with the earlier 64-line ranking the members took budget from used names).
ANNOTATED = frozenset({"go", "rust", "java", "c", "cpp", "python", "typescript"})
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
        if at < limit and text[at] == '"':  # a Python forward reference: "Console"
            at += 1
            continue
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


def assigned_type(text: str, end: int) -> str | None:
    """The class a name is assigned an instance of: ``= Name(``, ``= new Name(``,
    ``= Name::new(`` / ``= Name {`` (Rust), the name capitalized. A bounded look ahead, no
    regex backtracking: linear in the text."""
    limit = min(len(text), end + 80)
    at = end
    while at < limit and text[at] == " ":
        at += 1
    if at >= limit or text[at] != "=" or text[at + 1 : at + 2] in ("=", ">"):
        return None
    at += 1
    while at < limit and text[at] == " ":
        at += 1
    if text.startswith("new ", at):
        at += 4
    match = IDENTIFIER.match(text, at, limit)
    if match is None or not match.group()[:1].isupper():
        return None
    after = match.end()
    if text.startswith("::", after):  # Rust: Name::new(...), Name::from(...)
        call = IDENTIFIER.match(text, after + 2, limit)
        return (
            match.group() if call is not None and text[call.end() : call.end() + 1] == "(" else None
        )
    return match.group() if text[after : after + 1] in ("(", "{") else None


# What may stand between a declared type and its name in Java, C and C++: `Bridge bridge`,
# `PyGreenlet* self`, `const Name& event`.
_DECLARATOR_GAP = frozenset(" *&")
_DECLARATION_ENDS = frozenset(";=,)[")


def declared_type(text: str, start: int, end: int, previous: str, previous_end: int) -> str | None:
    """Java's, C's and C++'s ``Type name`` (the type written before the name): ``previous``,
    the identifier just before the name, when only spaces, ``*`` and ``&`` separate them, it
    is capitalized, and a declaration's end (``;``, ``=``, ``,``, ``)``) follows the name.
    Bounded look-around, no regex: linear in the text."""
    if not previous[:1].isupper() or not 0 < start - previous_end <= 4:
        return None
    if any(c not in _DECLARATOR_GAP for c in text[previous_end:start]):
        return None
    at = end
    while at < len(text) and at < end + 4 and text[at] == " ":
        at += 1
    return previous if text[at : at + 1] in _DECLARATION_ENDS else None


def written_type(text: str, end: int, go_style: bool) -> str | None:
    """The class the text gives the name ending at ``end``: annotated, else constructed."""
    return annotated_type(text, end, go_style) or assigned_type(text, end)


def name_usage(
    text: str, bindings: tuple[ImportBinding, ...] = (), language: str | None = None
) -> NameUsage:
    imported = {b.local for b in bindings}
    types: dict[str, str] = {}
    annotated = language in ANNOTATED
    go_style = language == "go"
    arrows = language in C_FAMILY
    type_first = language == "java" or arrows
    previous, previous_end = "", -1
    scope: str | None = None
    first: dict[str, int] = {}
    late: dict[str, int] = {}  # imported names: their second sighting (the first is the import)
    seen_once: dict[str, None] = {}  # in the order of the imports
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
        # `a.b` and, in Rust and C++, `Type::new` (in C and C++, `p->field`): one chain,
        # written with a dot.
        if chain and (
            (start == chain_end + 1 and text[chain_end] == ".")
            or (start == chain_end + 2 and text[chain_end:start] == "::")
            or (arrows and start == chain_end + 2 and text[chain_end:start] == "->")
        ):
            chain.append(name)
            if len(chain) > _CHAIN:
                chain.pop(0)
            dotted = ".".join(chain[:-1]) + "." + name
            first.setdefault(dotted, position)
            if len(block) < MAX_USES:
                block.add(dotted)
            if (
                arrows
                and len(chain) == 2
                and text[chain_end:start] == "::"
                and chain[0][:1].isupper()
                and text[match.end() : match.end() + 1] == "("
            ):
                scope = chain[0]  # `Type::method(`: `this` in what follows is a Type
            if (
                annotated
                and len(chain) == 2
                and chain[0] in ("self", "this")
                and dotted not in types
                and len(types) < MAX_TYPES
            ):
                # `self.console = Console(...)`, `self.options: Options`: the attribute's class.
                kind = written_type(text, match.end(), go_style=False)
                if kind is not None:
                    types[dotted] = kind
        else:
            if len(block) < MAX_USES:
                block.add(name)
            chain = [name]
            if annotated and name not in types and len(types) < MAX_TYPES:
                kind = written_type(text, match.end(), go_style)
                if kind is None and type_first and previous:
                    kind = declared_type(text, start, match.end(), previous, previous_end)
                if name == "this" and arrows:
                    kind = scope  # a C++ method defined outside its class (in a .cpp file)
                if kind is not None and kind != name:
                    types[name] = kind
            if name in imported and name not in seen_once:
                seen_once[name] = None
            elif name in imported:
                late.setdefault(name, position)
            else:
                first.setdefault(name, position)
        chain_end = match.end()
        previous, previous_end = name, chain_end
        position += 1
        if len(first) + len(late) >= MAX_USES:
            break
    unused = [name for name in seen_once if name not in late]
    for name in unused:
        late[name] = position  # imported, never used: after every use, in import order
    order = sorted([*first.items(), *late.items()], key=lambda item: item[1])
    return NameUsage(
        tuple(dict.fromkeys(name for name, _ in order)),
        tuple(frozenset(b) for b in blocks),
        tuple(types.items()),
        tuple(unused),
    )
