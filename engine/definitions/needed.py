"""Which declarations of other files the current file needs, most needed first.

A prompt helps the next line when it holds the signatures of the names that line will use. The
names a file uses are known (its text), and so is where each comes from (its imports, followed
through re-exports by the index); a name no import explains is looked up by name when only one
or two places in the repository declare it. The order is the order of first use in the file, so
that typing a new use appends to the list instead of reshuffling it."""

from __future__ import annotations

import keyword
import posixpath

from engine.repository.definitions import MAX_PLACES, Located
from engine.repository.headers import FileHeader
from engine.repository.index import RepositoryIndex
from engine.repository.languages import C_FAMILY
from engine.repository.symbols import class_bases, identifiers
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
# A member not declared in its class is looked for in the classes it extends, this many levels
# up (Flask -> App -> Scaffold), in at most this many bases each.
BASE_STEPS = 3
MAX_BASES = 3
# Languages whose files see every other file of their folder (a Go package, a Java package)
# without an import.
PACKAGE_SCOPED = frozenset({"go", "java"})


def needed_definitions(
    index: RepositoryIndex,
    relative: str,
    header: FileHeader,
    usage: NameUsage,
    near: tuple[frozenset[str], ...] = (),
) -> list[Located]:
    """Declarations from other files for the names ``usage`` lists: the names used in the
    first of ``near`` (the lines closest to the cursor) first, then the names imported and not
    used yet, then those of the next of ``near``, then the others; within each, those the
    imports explain (with the types they return) before those found by name alone, each in
    order of first use."""
    if near:
        found: list[Located] = []
        keys: set[str] = set()
        done: set[str] = set()
        # After what the cursor's lines use: what the file imports and uses nowhere yet
        # (`import { operate } from '../util/lift'`), the likeliest name of the next line.
        groups = (*near[:1], frozenset(usage.unused_imports), *near[1:], None)
        for group in groups:
            uses = tuple(u for u in usage.uses if u not in done and (group is None or u in group))
            done.update(uses)
            part = needed_definitions(index, relative, header, NameUsage(uses, types=usage.types))
            found += [located for located in part if located.key not in keys]
            keys.update(located.key for located in part)
        return found
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
        for located in _one_signature(found):
            if located.path == relative or located.key in seen:
                continue
            seen.add(located.key)
            target.append(located)
            if located.definition.container is None and attributes:
                add(target, _members_used(index, located, attributes), 0)
            if related > 0:
                for type_name in located.definition.returns:
                    add(target, index.follow(located.path, type_name), related - 1)

    package_scoped = header.language in PACKAGE_SCOPED
    # C and C++: what the file's #include lines bring in, and what those include in turn.
    included = _included(index, relative, header) if header.language in C_FAMILY else []
    stars = any(b.local == "*" for b in header.bindings)
    fixtures = _conftests(index, relative) if header.language == "python" else []
    for use in usage.uses:
        if len(imported) + len(by_name) >= MAX_DEFINITIONS:
            break
        owner, _, attribute = use.rpartition(".")
        if not owner:
            if use in bound and use not in local:
                add(imported, index.follow(relative, use), RELATED_STEPS)
            elif (
                use not in local and package_scoped and (same := _in_package(index, relative, use))
            ):
                add(imported, same, RELATED_STEPS)
            elif use not in local and included and (there := _in_files(index, included, use)):
                add(imported, there, RELATED_STEPS)
            elif use not in local and stars and (through := index.follow(relative, use)):
                add(imported, through, RELATED_STEPS)  # `use module::*`, `from m import *`
            elif use not in local and fixtures and (fixture := _fixture(index, fixtures, use)):
                add(imported, fixture, RELATED_STEPS)  # a pytest fixture a test asks for
            elif use not in local and _worth_looking_up(use):
                add(by_name, _unique(index, use, members=False), RELATED_STEPS)
            continue
        # `attr.setters.convert`: in Python, a submodule of an imported module too.
        imports_owner = owner.split(".", 1)[0] in bound
        module = index.module_of(relative, header, owner) if imports_owner else None
        if module is None and header.language == "rust" and owner not in bound:
            # A path written out in full: `crate::parser::strings::APOSTROPHE`.
            qualified = _rust_qualified(index, relative, owner, attribute)
            if qualified:
                add(imported, qualified, RELATED_STEPS)
                continue
        if module is not None:
            add(imported, index.follow(module, attribute), RELATED_STEPS)
        elif header.language == "go" and owner in bound:
            add(imported, _in_go_import(index, header, owner, attribute), RELATED_STEPS)
        elif owner in bound and (members := _members(index, relative, owner, attribute)):
            add(
                imported, members, RELATED_STEPS
            )  # Client.create(...): a member of an imported class
        elif (
            package_scoped
            and "." not in owner
            and owner not in local
            and (members := _members_in_package(index, relative, owner, attribute))
        ):
            add(imported, members, RELATED_STEPS)  # Type.Method with Type in the package
        elif ("." not in owner or usage.type_of(owner)) and (
            typed := _members_of_type(index, relative, header, usage, owner, attribute)
        ):
            # `value.as_bool()` with `value: &Value` written (usage.ANNOTATED languages only).
            add(imported, typed, 0)
        elif (
            header.language == "rust"
            and attribute[:1].isupper()
            and (held := _rust_variant_types(index, relative, header, owner, attribute))
        ):
            # `HirKind::Group(..)`: the enum is shown already; the types its variant holds,
            # as the enum's own file names them.
            add(imported, held, 0)
        elif header.language == "rust" and _outside_crate(index, relative, header, owner):
            continue  # `fmt::Formatter`: std's, not whatever the repository calls Formatter
        elif _worth_looking_up(attribute) and owner.rpartition(".")[2] not in local:
            # obj.method where obj's class lives elsewhere: a member declared in few places.
            add(by_name, _unique(index, attribute, members=True), 0)
    return imported + by_name


def _one_signature(found: list[Located]) -> list[Located]:
    """One Python declaration per name and scope: the first of a function's ``@overload``
    stubs, not each of them and its implementation (click's ``prompt`` showed three signatures
    and a type variable, a tenth of the tier, for one name; ``Command.main`` three). A
    TypeScript overload list stays whole: its signatures name different types (rxjs's
    ``merge``: one name of 52 lost when it was cut to one)."""
    if len(found) < 2:
        return found
    kept: list[Located] = []
    seen: set[tuple[str, str | None, str]] = set()
    for located in found:
        key = (located.path, located.definition.container, located.definition.name)
        if key not in seen or not located.path.endswith((".py", ".pyi")):
            kept.append(located)
            seen.add(key)
    return kept


# Types a variant may hold that are never the repository's.
_RUST_WRAPPERS = frozenset({"Vec", "Box", "Option", "Result", "String", "Rc", "Arc", "Cow"})


def _rust_variant_types(
    index: RepositoryIndex, relative: str, header: FileHeader, owner: str, variant: str
) -> list[Located]:
    """The repository's types that ``owner::variant`` holds (``Group(Group)``,
    ``Literal(Box<Literal>)``), resolved from the enum's file."""
    path, _, name = owner.rpartition(".")
    if path:  # `hir::Class::Unicode`: the enum from the module the path names
        module = (
            index.module_of(relative, header, path)
            if "." not in path
            else index.resolver().module_path(relative, "rust", path.replace(".", "::"))
        )
        candidates = index.follow(module, name) if module is not None else []
    else:
        candidates = [
            Located(relative, d) for d in header.definitions if d.name == name and not d.container
        ] or (index.follow(relative, name) or _unique(index, name, members=False))
    enums = [c for c in candidates if " enum " in " " + c.definition.text.partition("\n")[0]]
    found: list[Located] = []
    for enum in enums[:MAX_PLACES]:
        for held in _variant_payload(enum.definition.text, variant):
            found += index.follow(enum.path, held) or (
                _unique(index, held, members=False) if enum.path == relative else []
            )
    return found[:MAX_PLACES]


def _variant_payload(enum_text: str, variant: str) -> list[str]:
    """Capitalized type names inside ``variant(...)`` on its line of the enum's text."""
    for line in enum_text.split("\n"):
        stripped = line.strip()
        if not stripped.startswith(variant + "("):
            continue
        inside = stripped[len(variant) + 1 :]
        words = identifiers(inside[: inside.rfind(")")] if ")" in inside else inside)
        return [w for w in words if w[:1].isupper() and w not in _RUST_WRAPPERS][:2]
    return []


# Crates every Rust file may name that are never the repository's.
_RUST_STANDARD = frozenset({"std", "core", "alloc"})


def _outside_crate(index: RepositoryIndex, relative: str, header: FileHeader, owner: str) -> bool:
    """``owner`` (a Rust path's first part) names std or a crate outside the repository."""
    first = owner.split(".", 1)[0]
    if first in _RUST_STANDARD:
        return True
    binding = next((b for b in header.bindings if b.local == first), None)
    if binding is None:
        return False
    root = binding.module.split("::", 1)[0]
    if root in _RUST_STANDARD:
        return True
    if root in ("crate", "self", "super"):
        return False
    return index.resolver().module_path(relative, "rust", root) is None


def _members_used(
    index: RepositoryIndex, owner: Located, attributes: set[str], steps: int = BASE_STEPS
) -> list[Located]:
    """Members of ``owner`` named one of ``attributes``: declared in its class, else in the
    classes it extends (``app.route`` on a Flask: ``Scaffold.route``), ``steps`` levels up."""
    header = index.header(owner.path)
    if header is None:
        return []
    found = [
        Located(owner.path, d)
        for d in header.definitions
        if d.container == owner.definition.name and d.name in attributes
    ]
    inherited = attributes - {located.definition.name for located in found}
    if inherited and steps > 0 and owner.definition.container is None:
        for base in class_bases(owner.definition.text)[:MAX_BASES]:
            for located in _base_class(index, owner.path, header, base):
                if located.key != owner.key:
                    found += _members_used(index, located, inherited, steps - 1)
    if header.language == "go" and owner.definition.text.startswith("type "):
        # Methods are declared beside the type, in any file of its package.
        folder = posixpath.dirname(owner.path)
        found += [
            located
            for attribute in sorted(attributes)
            for located in index.declarations(attribute)
            if posixpath.dirname(located.path) == folder
            and go_receiver(located.definition.text) == owner.definition.name
        ]
    # One signature per member: rxjs's Observable declares `pipe` in eleven overloads, and
    # showing each took a file's whole tier from the names it uses.
    once: dict[tuple[str, str | None, str], Located] = {}
    for located in found:
        once.setdefault(
            (located.path, located.definition.container, located.definition.name), located
        )
    return list(once.values())[:MAX_MEMBERS]


def _base_class(index: RepositoryIndex, path: str, header: FileHeader, base: str) -> list[Located]:
    """The class ``base`` (``App``, ``sansio.App``) names in the file ``path``."""
    owner, _, name = base.rpartition(".")
    if not owner:
        return index.follow(path, name)[:1]
    module = index.module_of(path, header, owner) if "." not in owner else None
    return index.follow(module, name)[:1] if module is not None else []


def go_receiver(text: str) -> str | None:
    """``func (c *Command) Name(`` -> ``Command``; None for a plain function."""
    if not text.startswith("func ("):
        return None
    end = text.find(")", 6)
    words = (text[6:end] if end != -1 else "").replace("*", " ").split()
    if not words:
        return None
    return words[-1].split("[", 1)[0]


def _members_of_type(
    index: RepositoryIndex,
    relative: str,
    header: FileHeader,
    usage: NameUsage,
    owner: str,
    attribute: str,
) -> list[Located]:
    """Members named ``attribute`` of the type the text annotates ``owner`` with."""
    kind = usage.type_of(owner)
    if kind is None:
        return []
    types = index.follow(relative, kind)
    if not types and header.language in PACKAGE_SCOPED:
        types = _in_package(index, relative, kind)
    if not types:
        types = _unique(index, kind, members=False)
    return _members_named(index, types, attribute)


def _members_named(index: RepositoryIndex, types: list[Located], attribute: str) -> list[Located]:
    """Members named ``attribute`` of each of ``types``: declared with the type, else in any
    file (`_members_anywhere`)."""
    found: list[Located] = []
    for located in types:
        found += _members_used(index, located, {attribute}) or _members_anywhere(
            index, located, attribute
        )
    return found[:MAX_PLACES]


def _members_anywhere(index: RepositoryIndex, owner: Located, attribute: str) -> list[Located]:
    """``attribute`` declared for ``owner``'s type in any file: a Rust impl block elsewhere,
    a Go method beside the type."""
    name = owner.definition.name
    return [
        other
        for other in index.declarations(attribute)
        if other.definition.container == name or go_receiver(other.definition.text) == name
    ][:MAX_PLACES]


MAX_INCLUDED = 40


def _included(index: RepositoryIndex, relative: str, header: FileHeader) -> list[str]:
    """The repository's files ``relative`` includes, directly then one level further."""
    resolver = index.resolver()
    direct = resolver.resolve(relative, header.language, header.imports)
    found = list(direct)
    for path in direct:
        inner = index.header(path)
        if inner is not None:
            found += [
                p
                for p in resolver.resolve(path, inner.language, inner.imports)
                if p not in found and p != relative
            ]
    return found[:MAX_INCLUDED]


def _in_files(index: RepositoryIndex, files: list[str], name: str) -> list[Located]:
    """``name`` declared at the top level of one of ``files`` (in their order)."""
    if not _worth_looking_up(name):
        return []
    wanted = set(files)
    found = [
        located
        for located in index.declarations(name)
        if located.path in wanted and located.definition.container is None
    ]
    found.sort(key=lambda located: files.index(located.path))
    return found[:MAX_PLACES]


def _rust_qualified(
    index: RepositoryIndex, relative: str, owner: str, attribute: str
) -> list[Located]:
    """``a::b::Name`` (owner ``a.b``) or ``a::Type::method``: from the module file the path
    names, starting at the crate, this module or its parent (``mod`` children by name)."""
    parts = owner.split(".")
    # As written (crate::, super::, self::, a crate's name, a child module), else from the root.
    starts = [parts] if parts[0] in ("crate", "super", "self") else [parts, ["crate", *parts]]
    resolver = index.resolver()
    for path in starts:
        module = resolver.module_path(relative, "rust", "::".join(path))
        if module is None or module == relative:
            continue
        found = index.follow(module, attribute)
        if found:
            return found
        # `Type::method`: the last part is a type declared in that module.
        found = _members_named(index, index.follow(module, path[-1]), attribute)
        if found:
            return found
    return []


def _conftests(index: RepositoryIndex, relative: str) -> list[str]:
    """The ``conftest.py`` files pytest loads for ``relative``: its folder's, then each parent's
    (their fixtures reach a test by parameter name, with no import)."""
    found = []
    folder = posixpath.dirname(relative)
    while True:
        candidate = posixpath.join(folder, "conftest.py")
        if candidate != relative and candidate in index:
            found.append(candidate)
        if not folder:
            return found
        folder = posixpath.dirname(folder)


def _fixture(index: RepositoryIndex, conftests: list[str], name: str) -> list[Located]:
    """``name`` declared at the top level of the nearest conftest that declares it."""
    for path in conftests:
        header = index.header(path)
        if header is None:
            continue
        found = [Located(path, d) for d in header.definitions if d.name == name and not d.container]
        if found:
            return found[:MAX_PLACES]
    return []


def _in_package(index: RepositoryIndex, relative: str, name: str) -> list[Located]:
    """``name`` declared at the top level of another file of the same folder (a Go package
    sees its other files' names; Go test-only files are seen only from tests)."""
    if not _worth_looking_up(name):
        return []
    return _top_level_in(
        index, name, posixpath.dirname(relative), relative.endswith("_test.go"), besides=relative
    )


def _top_level_in(
    index: RepositoryIndex, name: str, folder: str, with_tests: bool, besides: str = ""
) -> list[Located]:
    """``name`` declared at the top level (not a Go method) of a file directly in ``folder``
    other than ``besides``; Go test-only files count only ``with_tests``."""
    return [
        located
        for located in index.declarations(name)
        if located.definition.container is None
        and located.path != besides
        and posixpath.dirname(located.path) == folder
        and go_receiver(located.definition.text) is None
        and (with_tests or not located.path.endswith("_test.go"))
    ][:MAX_PLACES]


def _in_go_import(
    index: RepositoryIndex, header: FileHeader, owner: str, attribute: str
) -> list[Located]:
    """``pkg.Name``: Name declared in the folder the import of ``pkg`` names."""
    binding = next((b for b in header.bindings if b.local == owner and b.imported is None), None)
    if binding is None or not attribute[:1].isupper():  # only exported names cross packages
        return []
    folder = index.resolver().go_package(binding.module)
    if folder is None and _go_package_name(index, "") == owner:
        folder = ""  # the module's root package (its path is go.mod's module line)
    if folder is None:
        return []
    return _top_level_in(index, attribute, folder, with_tests=False)


def _go_package_name(index: RepositoryIndex, folder: str) -> str | None:
    for path in index.resolver().files_in(folder):
        header = index.header(path)
        if header is not None and header.language == "go" and not path.endswith("_test.go"):
            clause = next((i for i in header.imports if i.startswith("package ")), "")
            words = clause.split()
            return words[1] if len(words) > 1 else None
    return None


def _members_in_package(
    index: RepositoryIndex, relative: str, owner: str, attribute: str
) -> list[Located]:
    types = _in_package(index, relative, owner)
    found = []
    for located in types:
        found += _members_used(index, located, {attribute})
    return found[:MAX_PLACES]


def _members(index: RepositoryIndex, relative: str, owner: str, attribute: str) -> list[Located]:
    found: list[Located] = []
    for located in index.follow(relative, owner):
        found += _members_used(index, located, {attribute})
        if not found:
            found += _members_anywhere(index, located, attribute)
    return found[:MAX_PLACES]


def _unique(index: RepositoryIndex, name: str, *, members: bool) -> list[Located]:
    found = [located for located in index.declarations(name) if _is_member(located) == members]
    # A Rust type's impl blocks name it; only the type declares it.
    declared = [located for located in found if not located.is_impl_block] or found
    return declared if len({f.path for f in declared}) <= MAX_PLACES and len(declared) <= 3 else []


def _is_member(located: Located) -> bool:
    """A class's member, or a Go method (declared at the top level with a receiver)."""
    definition = located.definition
    return definition.container is not None or go_receiver(definition.text) is not None


def _worth_looking_up(name: str) -> bool:
    return (
        len(name) >= MIN_LOOKUP_LENGTH
        and name not in _NEVER_LOOKED_UP
        and not (name.startswith("__") and name.endswith("__"))
    )
