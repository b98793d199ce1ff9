"""Which declarations of other files the current file needs, most needed first.

A prompt helps the next line when it holds the signatures of the names that line will use. The
names a file uses are known (its text), and so is where each comes from (its imports, followed
through re-exports by the index); a name no import explains is looked up by name when only one
or two places in the repository declare it. The order is the order of first use in the file, so
that typing a new use appends to the list instead of reshuffling it."""

from __future__ import annotations

import keyword

from engine.repository.definitions import MAX_PLACES, Located
from engine.repository.headers import FileHeader
from engine.repository.index import RepositoryIndex
from engine.repository.usage import NameUsage

# Names too short or too common to look up by name alone.
MIN_LOOKUP_LENGTH = 3
_NEVER_LOOKED_UP = frozenset(
    {
        *keyword.kwlist,
        *keyword.softkwlist,
        "self",
        "cls",
        "this",
        "super",
        "args",
        "kwargs",
        "value",
        "name",
        "data",
        "result",
        "const",
        "let",
        "var",
        "function",
        "return",
        "export",
        "import",
        "from",
        "default",
        "async",
        "await",
        "new",
        "typeof",
        "instanceof",
        "undefined",
        "null",
        "true",
        "false",
        "string",
        "number",
        "boolean",
        "void",
        "interface",
        "extends",
        "implements",
        "__init__",
        "__name__",
        "__main__",
    }
)
MAX_DEFINITIONS = 200
MAX_MEMBERS = 12
# Return types and base classes followed this many steps (Flask -> App -> Scaffold).
RELATED_STEPS = 1


def needed_definitions(
    index: RepositoryIndex,
    relative: str,
    header: FileHeader,
    usage: NameUsage,
    near: frozenset[str] = frozenset(),
) -> list[Located]:
    """Declarations from other files for the names ``usage`` lists: the names used ``near``
    the cursor first, then the others; within each, those the imports explain (with the types
    they return) before those found by name alone, each in order of first use."""
    if near:
        close = [u for u in usage.uses if u in near]
        rest = [u for u in usage.uses if u not in near]
        first = needed_definitions(index, relative, header, NameUsage(tuple(close)))
        keys = {located.key for located in first}
        second = needed_definitions(index, relative, header, NameUsage(tuple(rest)))
        return first + [located for located in second if located.key not in keys]
    local = {d.name for d in header.definitions if d.container is None}
    bound = {b.local for b in header.bindings}
    # Attributes the file reads anywhere (`x.render(...)`): a class's members among them are
    # shown with the class, however far down the class declares them.
    attributes = {use.rpartition(".")[2] for use in usage.uses if "." in use}
    imported: list[Located] = []
    by_name: list[Located] = []
    seen: set[str] = set()

    def add(target: list[Located], found: list[Located], related: int) -> None:
        """``related``: how many steps of return types and base classes to follow."""
        for located in found:
            if located.path == relative or located.key in seen:
                continue
            seen.add(located.key)
            target.append(located)
            if located.definition.container is None and attributes:
                add(target, _members_used(index, located, attributes), 0)
            if related > 0:
                for type_name in located.definition.returns:
                    add(target, index.follow(located.path, type_name), related - 1)

    for use in usage.uses:
        if len(imported) + len(by_name) >= MAX_DEFINITIONS:
            break
        owner, _, attribute = use.rpartition(".")
        if not owner:
            if use in bound and use not in local:
                add(imported, index.follow(relative, use), RELATED_STEPS)
            elif use not in local and _worth_looking_up(use):
                add(by_name, _unique(index, use, members=False), RELATED_STEPS)
            continue
        module = index.module_of(relative, header, owner) if owner in bound else None
        if module is not None:
            add(imported, index.follow(module, attribute), RELATED_STEPS)
        elif owner in bound and (members := _members(index, relative, owner, attribute)):
            add(
                imported, members, RELATED_STEPS
            )  # Client.create(...): a member of an imported class
        elif _worth_looking_up(attribute) and owner.rpartition(".")[2] not in local:
            # obj.method where obj's class lives elsewhere: a member declared in few places.
            add(by_name, _unique(index, attribute, members=True), 0)
    return imported + by_name


def _members_used(index: RepositoryIndex, owner: Located, attributes: set[str]) -> list[Located]:
    header = index.header(owner.path)
    if header is None:
        return []
    return [
        Located(owner.path, d)
        for d in header.definitions
        if d.container == owner.definition.name and d.name in attributes
    ][:MAX_MEMBERS]


def _members(index: RepositoryIndex, relative: str, owner: str, attribute: str) -> list[Located]:
    found = []
    for located in index.follow(relative, owner):
        header = index.header(located.path)
        if header is None:
            continue
        found += [
            Located(located.path, d)
            for d in header.definitions
            if d.container == located.definition.name and d.name == attribute
        ]
    return found[:MAX_PLACES]


def _unique(index: RepositoryIndex, name: str, *, members: bool) -> list[Located]:
    found = [
        located
        for located in index.declarations(name)
        if (located.definition.container is not None) == members
    ]
    return found if len({f.path for f in found}) <= MAX_PLACES and len(found) <= 3 else []


def _worth_looking_up(name: str) -> bool:
    return (
        len(name) >= MIN_LOOKUP_LENGTH
        and name not in _NEVER_LOOKED_UP
        and not (name.startswith("__") and name.endswith("__"))
    )
