"""A file's compact header: imports, top-level declarations with signatures, class members'
signatures and first docstring lines. Bodies are left out: what another file needs to call it.

The same walk records each declaration on its own (``Definition``: what a prompt shows when
another file uses that name) and the file's import bindings (which name comes from where), so
context can be chosen name by name rather than file by file."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass

from tree_sitter import Node, Tree

from engine.repository.languages import C_FAMILY, parser_for
from engine.repository.node_types import (
    BODY_FIELDS,
    BODY_TYPES,
    CONTAINERS,
    IMPORTS,
    MEMBER_SIGNATURES,
    PYTHON_BLOCKS,
    SHORT_DECLARATIONS,
    SIGNATURES,
    TRANSPARENT,
    WRAPPERS,
)
from engine.repository.symbols import (
    IDENTIFIER,
    Definition,
    ImportBinding,
    declared_names,
    declared_private,
    import_bindings,
    public_member,
    type_names,
)

MAX_HEADER_LINES = 80
MAX_LINE = 160
FALLBACK_LINES = 20
# A declaration keeps at most this many lines (a class: its head, docstring and members,
# public ones first); a prompt shows as many of them as its budget allows.
MAX_DEFINITION_LINES = 40
# Definitions per file: a generated module with thousands of constants stays bounded.
MAX_DEFINITIONS = 2000
# Python blocks whose declarations are top-level all the same (`if TYPE_CHECKING:`, `try:`).
_STRING_OPENING = re.compile(r"""^[rbfuRBFU]*("{3}|'{3}|"|')""")

# A class member as the walk meets it: name, its lines, its line number, its return types.
Member = tuple[str, list[str], int, tuple[str, ...]]


@dataclass(frozen=True)
class FileHeader:
    path: str
    language: str | None
    text: str
    # Import statements as written: the resolver turns them into paths.
    imports: tuple[str, ...]
    # Each declaration with its signature lines (class members as their own entries too).
    definitions: tuple[Definition, ...] = ()
    # Which local name comes from which module, imports nested in blocks included.
    bindings: tuple[ImportBinding, ...] = ()
    # The distinct names the file's text mentions (the first MAX_MENTIONS): counted over the
    # repository, how widely each declaration is used (a module's exports, most used first).
    mentions: tuple[str, ...] = ()

    def __reduce__(self) -> tuple[Callable[..., FileHeader], tuple[object, ...]]:
        # Interned again on arrival (from the parser's process, from the disk cache): a
        # repository's files mention the same few thousand names, and 5,000 files' mentions
        # unpickled as their own strings took 95 MB.
        fields = (self.path, self.language, self.text, self.imports, self.definitions)
        return _unpickled_header, (*fields, self.bindings, self.mentions)

    @property
    def summary(self) -> str:
        """The header without its import lines: what another file's prompt shows of it."""
        lines = [d.text for d in self.definitions if d.container is None]
        return "\n".join(lines) if lines else self.text


def _unpickled_header(
    path: str,
    language: str | None,
    text: str,
    imports: tuple[str, ...],
    definitions: tuple[Definition, ...],
    bindings: tuple[ImportBinding, ...],
    mentions: tuple[str, ...],
) -> FileHeader:
    return FileHeader(
        path, language, text, imports, definitions, bindings, tuple(map(sys.intern, mentions))
    )


def parse(language: str, source: bytes, old_tree: Tree | None = None) -> Tree:
    return (
        parser_for(language).parse(source, old_tree)
        if old_tree
        else parser_for(language).parse(source)
    )


def extract_header(
    path: str, language: str | None, source: bytes, tree: Tree | None = None
) -> FileHeader:
    if language is None or language not in IMPORTS:
        return FileHeader(path, language, _first_lines(source), ())
    tree = tree or parse(language, source)
    lines: list[str] = []
    imports: list[str] = []
    definitions: list[Definition] = []
    for node in _top_level_nodes(tree.root_node, language):
        # A C++ namespace's declarations are the file's; its line shows once, before them.
        namespace = _namespace_head(node, source) if language == "cpp" else None
        if namespace is not None and namespace not in lines and len(lines) < MAX_HEADER_LINES:
            lines.append(namespace)
        node_lines: list[str] = []
        members: list[Member] = []
        _top_level(node, language, source, node_lines, imports, members)
        if len(lines) < MAX_HEADER_LINES:
            lines.extend(node_lines)
        if node_lines and len(definitions) < MAX_DEFINITIONS:
            definitions.extend(_definitions(node, language, source, node_lines, members))
    if len(lines) > MAX_HEADER_LINES:
        lines = [*lines[:MAX_HEADER_LINES], "# …"]
    return FileHeader(
        path,
        language,
        "\n".join(lines),
        tuple(imports),
        tuple(definitions),
        tuple(import_bindings(tree.root_node, language, source)),
        mentions(source),
    )


MAX_MENTIONS = 600
MENTIONS_SCANNED_BYTES = 200_000


def mentions(source: bytes) -> tuple[str, ...]:
    """The first MAX_MENTIONS distinct identifiers of the text, interned (shared by files)."""
    found: dict[str, None] = {}
    text = source[:MENTIONS_SCANNED_BYTES].decode("utf-8", "replace")
    for match in IDENTIFIER.finditer(text):
        found.setdefault(match.group(), None)
        if len(found) >= MAX_MENTIONS:
            break
    return tuple(sys.intern(name) for name in found)


def _definitions(
    node: Node,
    language: str,
    source: bytes,
    node_lines: list[str],
    members: list[Member],
) -> list[Definition]:
    target = _declaration(node)
    if target.type in IMPORTS[language]:
        return []
    names = declared_names(target, language, source)
    if not names:
        return []
    line = node.start_point[0]
    returns = type_names(target, source, language)
    text = _class_text(node_lines, members, language) if members else _capped(node_lines)
    found = [Definition(sys.intern(name), line, text, returns=returns) for name in names]
    if members:
        # A member is shown under its class's first line, so the model sees whose it is.
        opener = next((ln for ln in node_lines if not ln.startswith("@")), node_lines[0])
        for member, member_lines, member_line, member_returns in members:
            found.append(
                Definition(
                    sys.intern(member),
                    member_line,
                    "\n".join(member_lines[:4]),
                    container=names[0],
                    returns=member_returns,
                    opener=opener,
                )
            )
    return found


def _capped(lines: list[str]) -> str:
    head = lines[: MAX_DEFINITION_LINES + 1]
    if len(lines) > len(head):
        head[-1] = head[-1][: len(head[-1]) - len(head[-1].lstrip())] + "…"
    return "\n".join(head)


def _class_text(node_lines: list[str], members: list[Member], language: str) -> str:
    """A class as a prompt shows it: its head and docstring, then its public members (those
    another file calls) before the private ones, within the line cap."""
    first_member = members[0][1][0] if members[0][1] else None
    head_end = node_lines.index(first_member) if first_member in node_lines else 1
    if language == "python":
        # A name's later definitions (``@overload`` variants, a property's setter) repeat its
        # first: one line each took the room of other members.
        first: dict[str, Member] = {}
        for member in members:
            first.setdefault(member[0], member)
        members = list(first.values())
    public = [m for m in members if not _private_member(m, language)]
    private = [m for m in members if m not in public]
    body = [line for member in [*public, *private] for line in member[1]]
    lines = [*node_lines[:head_end], *body]
    if language != "python":
        lines.append(node_lines[-1])  # the closing brace
    if len(lines) <= MAX_DEFINITION_LINES + 1:
        return "\n".join(lines)
    kept = lines[:MAX_DEFINITION_LINES]
    indent = kept[-1][: len(kept[-1]) - len(kept[-1].lstrip())]
    return "\n".join([*kept, indent + "…", *([node_lines[-1]] if language != "python" else [])])


def _private_member(member: Member, language: str) -> bool:
    name, lines = member[0], member[1]
    if language == "python":
        return not public_member(name)
    return name.startswith("_") or (bool(lines) and declared_private(lines[0]))


def _declaration(node: Node) -> Node:
    while node.type in WRAPPERS:
        inner = _unwrap(node)
        if inner is None or inner is node:
            break
        node = inner
    return node


def _namespace_head(node: Node, source: bytes) -> str | None:
    """``namespace a::b {`` for a declaration inside a C++ namespace (the innermost)."""
    parent = node.parent
    while parent is not None and parent.type != "namespace_definition":
        parent = parent.parent
    if parent is None:
        return None
    body = parent.child_by_field_name("body")
    end = body.start_byte if body is not None else parent.end_byte
    return _clip(" ".join(_text_between(source, parent.start_byte, end).split()) + " {")


def _top_level_nodes(root: Node, language: str, depth: int = 0) -> list[Node]:
    """The root's children, looking inside ERROR nodes (a half-typed statement can make
    tree-sitter wrap the rest of the file in one, and its declarations still count) and, in
    Python, inside module-level ``if``/``try`` blocks (``if TYPE_CHECKING:``, fallbacks)."""
    nodes: list[Node] = []
    for node in root.named_children:
        if node.type == "ERROR":
            nodes.extend(_top_level_nodes(node, language, depth))
        elif language == "python" and node.type in PYTHON_BLOCKS and depth < 4:
            nodes.extend(_top_level_nodes(node, language, depth + 1))
        elif language in C_FAMILY and node.type in TRANSPARENT and depth < 6:
            inner = node.child_by_field_name("body")
            nodes.extend(_top_level_nodes(inner or node, language, depth + 1))
        else:
            nodes.append(node)
    return nodes


def _top_level(
    node: Node,
    language: str,
    source: bytes,
    lines: list[str],
    imports: list[str],
    members: list[Member] | None = None,
) -> None:
    kind = node.type
    if kind in IMPORTS[language]:
        statement = _text(node, source).strip()
        imports.append(statement)
        lines.extend(_clip(statement).splitlines())
    elif kind in CONTAINERS[language]:
        lines.extend(_container(node, language, source, depth=0, members=members))
    elif kind in SIGNATURES[language]:
        lines.extend(_signature_with_doc(node, language, source, indent=""))
    elif kind == "expression_statement" and language == "python":
        first = _text(node, source).splitlines()[0]
        if "=" in first and not _STRING_OPENING.match(first):
            lines.append(_clip(first))
    elif kind in WRAPPERS:
        inner = _unwrap(node)
        if inner is not None and inner is not node:
            prefix = _text_between(source, node.start_byte, inner.start_byte).strip()
            before = len(lines)
            _top_level(inner, language, source, lines, imports, members)
            if prefix and len(lines) > before:
                if node.type == "decorated_definition":
                    lines[before:before] = [_clip(line.strip()) for line in prefix.splitlines()]
                else:  # export, template<...>: the same line
                    lines[before] = _clip(" ".join(prefix.split()) + " " + lines[before])
    elif kind == "preproc_def" and node.child_by_field_name("value") is None:
        pass  # `#define X_H`: an include guard, nothing to show
    elif kind in SHORT_DECLARATIONS[language]:
        lines.extend(_short_declaration(_text(node, source).splitlines(), language))


# A struct, enum or type shows this many lines (its fields, variants), comments left out.
SHORT_LINES = 12
_COMMENT_STARTS = ("//", "/*", "*")


def _short_declaration(lines: list[str], language: str) -> list[str]:
    """A struct's fields, an enum's variants: the lines another file uses, without the doc
    comments and attributes between them (a documented enum showed one variant before)."""
    starts = (*_COMMENT_STARTS, "#[") if language == "rust" else _COMMENT_STARTS
    kept = [lines[0], *(ln for ln in lines[1:] if not ln.strip().startswith(starts))]
    if len(kept) <= SHORT_LINES:
        return [_clip(line) for line in kept]
    last = kept[-1]
    closing = [last] if last.strip().startswith(("}", ")")) else []  # `}`, `} Name;`, `)`
    cut = kept[SHORT_LINES - 2]
    ellipsis = cut[: len(cut) - len(cut.lstrip())] + "…"
    return [_clip(line) for line in (*kept[: SHORT_LINES - 2], ellipsis, *closing)]


def _unwrap(node: Node) -> Node | None:
    declaration = node.child_by_field_name("declaration") or node.child_by_field_name("definition")
    if declaration is not None:
        return declaration
    named = [c for c in node.named_children if c.type not in ("decorator", "comment")]
    return named[-1] if named else None


def _container(
    node: Node,
    language: str,
    source: bytes,
    depth: int,
    members: list[Member] | None = None,
) -> list[str]:
    indent = "    " * depth
    body = _body(node)
    if body is None:
        return [indent + _clip(_text(node, source).splitlines()[0])]
    head = _text_between(source, node.start_byte, body.start_byte).strip().rstrip(":")
    lines = [indent + _clip(" ".join(head.split()) + _opener(language))]
    doc = _docstring(body, source) if language == "python" else None
    if doc:
        lines.append(f'{indent}    """{doc}"""')
    for member in body.named_children:
        target = _unwrap(member) if member.type in WRAPPERS else member
        if target is None:
            continue
        before = len(lines)
        if target.type in CONTAINERS.get(language, set()) and depth < 2:
            lines.extend(_container(target, language, source, depth + 1))
        elif target.type in MEMBER_SIGNATURES:
            lines.extend(_signature_with_doc(target, language, source, indent + "    "))
        elif language == "python" and member.type == "expression_statement":
            first = _text(member, source).splitlines()[0]
            if ("=" in first or ":" in first) and not _STRING_OPENING.match(first):
                lines.append(indent + "    " + _clip(first))
        if members is not None and len(lines) > before:
            returns = type_names(target, source, language)
            for name in declared_names(target, language, source):
                members.append((name, lines[before:], target.start_point[0], returns))
    if language != "python":
        lines.append(indent + "}")
    return lines


def _signature_with_doc(node: Node, language: str, source: bytes, indent: str) -> list[str]:
    body = _body(node)
    end = body.start_byte if body is not None else node.end_byte
    signature = " ".join(_text_between(source, node.start_byte, end).split())
    if body is not None and language == "python":
        signature = signature.rstrip(":")
    doc = _docstring(body, source) if language == "python" and body is not None else None
    if doc:  # in Python a docstring alone is a body
        return [indent + _clip(signature + ":"), f'{indent}    """{doc}"""']
    if body is not None:
        signature += _elided_body(language)
    return [indent + _clip(signature)]


def _body(node: Node) -> Node | None:
    for field in BODY_FIELDS:
        body = node.child_by_field_name(field)
        if body is not None:
            return body
    for child in node.named_children:
        if child.type in BODY_TYPES:
            return child
    return None


def _docstring(body: Node, source: bytes) -> str | None:
    first = body.named_children[0] if body.named_children else None
    if first is None or first.type != "expression_statement" or not first.named_children:
        return None
    string = first.named_children[0]
    if string.type != "string":
        return None
    text = _STRING_OPENING.sub("", _text(string, source)).rstrip("\"'").strip()
    line = text.splitlines()[0].strip() if text else ""
    return _clip(line) if line else None


def _opener(language: str) -> str:
    return ":" if language == "python" else " {"


def _elided_body(language: str) -> str:
    return ": ..." if language == "python" else " { … }"


def _first_lines(source: bytes) -> str:
    text = source[:8192].decode("utf-8", errors="replace")
    return "\n".join(_clip(line) for line in text.splitlines()[:FALLBACK_LINES])


def _text(node: Node, source: bytes) -> str:
    return source[node.start_byte : node.end_byte].decode("utf-8", errors="replace")


def _text_between(source: bytes, start: int, end: int) -> str:
    return source[start:end].decode("utf-8", errors="replace")


def _clip(line: str) -> str:
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…"
