"""Names in source files: what a declaration defines, what an import binds, the identifiers a
text uses. Read from tree-sitter nodes; the one regex here (identifiers) cannot backtrack."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tree_sitter import Node

# An identifier: a greedy run with no alternatives, so matching is linear in the text.
IDENTIFIER = re.compile(r"[A-Za-z_$][\w$]*")
# Type-annotation words that name no declaration of the repository.
_BUILTIN_TYPES = frozenset(
    {
        "None",
        "Optional",
        "Union",
        "List",
        "Dict",
        "Set",
        "Tuple",
        "Any",
        "Callable",
        "Iterable",
        "Iterator",
        "Sequence",
        "Mapping",
        "Awaitable",
        "Promise",
        "Array",
        "Record",
        "Partial",
        "Readonly",
        "Map",
        "Self",
        "Type",
        "Literal",
        "string",
        "number",
        "boolean",
        "void",
        "int",
        "str",
        "bool",
        "float",
        "bytes",
        "list",
        "dict",
        "tuple",
        "set",
        "object",
        "type",
    }
)
MAX_BINDINGS = 500
_NESTED_IMPORT_DEPTH = 4
_PY_NESTING = {
    "if_statement",
    "try_statement",
    "with_statement",
    "function_definition",
    "class_definition",
    "decorated_definition",
    "block",
    "else_clause",
    "elif_clause",
    "except_clause",
    "finally_clause",
}


@dataclass(frozen=True, slots=True)
class Definition:
    """One declared name, as another file's prompt shows it: signature lines, no bodies."""

    name: str
    line: int  # 0-based line where the declaration starts
    text: str
    # The class (or impl, interface) it is a member of; None at top level.
    container: str | None = None
    # Names in its return annotation (``-> Client``): their definitions help the next line.
    returns: tuple[str, ...] = ()
    # A member's class line (one string shared by all its members), shown above it.
    opener: str | None = None

    @property
    def shown(self) -> str:
        return f"{self.opener}\n{self.text}" if self.opener else self.text

    def __reduce__(self) -> tuple[type[Definition], tuple[object, ...]]:
        # Slots keep a repository's declarations small in memory; pickling by the constructor
        # keeps the index's warm start fast (dataclasses' slotted __setstate__ is slow).
        fields = (self.name, self.line, self.text, self.container, self.returns, self.opener)
        return Definition, fields


@dataclass(frozen=True)
class ImportBinding:
    """``local`` names ``imported`` of ``module`` in this file. ``imported`` is None when the
    local name is the module itself (``import a.b as m``, ``import * as m``) and ``"*"`` for
    a star import or re-export (``from m import *``, ``export * from './m'``)."""

    local: str
    module: str  # as written: "..pkg.mod" in Python, "./x.js" in JavaScript/TypeScript
    imported: str | None


def identifiers(text: str) -> list[str]:
    """Distinct identifiers in order of first appearance."""
    return list(dict.fromkeys(IDENTIFIER.findall(text)))


def declared_names(node: Node, language: str, source: bytes) -> list[str]:
    """The names a declaration node introduces (none for statements that declare nothing)."""
    name = node.child_by_field_name("name")
    if name is not None and node.type != "expression_statement":
        text = _text(name, source)
        return [text] if IDENTIFIER.fullmatch(text) else []
    kind = node.type
    if language == "python" and kind in ("expression_statement", "assignment"):
        children = node.named_children
        assignment = node if kind == "assignment" else (children[0] if children else None)
        if assignment is not None and assignment.type == "assignment":
            left = assignment.child_by_field_name("left")
            if left is not None and left.type == "identifier":
                return [_text(left, source)]
        return []
    if kind in ("lexical_declaration", "variable_declaration", "field_declaration"):
        return [
            _text(target, source)
            for child in node.named_children
            if child.type in ("variable_declarator", "field_declarator")
            and (target := child.child_by_field_name("name") or _first_identifier(child))
            is not None
            and target.type in ("identifier", "field_identifier", "property_identifier")
        ] or _declarator_names(node, source)
    if kind in ("type_declaration", "const_declaration", "var_declaration"):  # Go
        return [
            _text(spec_name, source)
            for spec in node.named_children
            if (spec_name := spec.child_by_field_name("name")) is not None
        ]
    if kind == "impl_item":  # Rust: members of `impl Type` belong to Type
        target = node.child_by_field_name("type")
        return [_text(target, source)] if target is not None else []
    if kind in ("function_definition", "declaration", "type_definition"):  # C, C++
        return _declarator_names(node, source)
    return []


def _declarator_names(node: Node, source: bytes) -> list[str]:
    names = []
    for child in node.children_by_field_name("declarator"):
        found = _first_identifier(child)
        if found is not None:
            names.append(_text(found, source))
    return names


def _first_identifier(node: Node) -> Node | None:
    """Follow ``declarator`` fields (pointers, functions, arrays) down to the declared name."""
    current: Node | None = node
    for _ in range(8):
        if current is None:
            return None
        if current.type in (
            "identifier",
            "field_identifier",
            "type_identifier",
            "property_identifier",
        ):
            return current
        if current.type in ("qualified_identifier", "destructor_name"):
            return current.child_by_field_name("name") or current
        current = current.child_by_field_name("declarator") or current.child_by_field_name("name")
    return None


def type_names(node: Node, source: bytes) -> tuple[str, ...]:
    """Identifiers in a declaration's return annotation (Python, TypeScript, Rust, Go)."""
    annotation = node.child_by_field_name("return_type") or node.child_by_field_name("result")
    if annotation is None and node.type in ("lexical_declaration", "variable_declaration"):
        for child in node.named_children:  # const f = (...): T => ...
            value = child.child_by_field_name("value")
            if value is not None:
                annotation = value.child_by_field_name("return_type")
                break
    if annotation is None or annotation.end_byte - annotation.start_byte > 400:
        return ()
    names = identifiers(_text(annotation, source))
    return tuple(n for n in names if n not in _BUILTIN_TYPES)[:4]


def import_bindings(root: Node, language: str, source: bytes) -> list[ImportBinding]:
    if language == "python":
        found: list[ImportBinding] = []
        _python_imports(root, source, found, 0)
        return found[:MAX_BINDINGS]
    if language in ("javascript", "typescript", "tsx"):
        return _js_imports(root, source)[:MAX_BINDINGS]
    return []


def _python_imports(node: Node, source: bytes, found: list[ImportBinding], depth: int) -> None:
    for child in node.named_children:
        kind = child.type
        if kind == "import_statement":
            for name in child.children_by_field_name("name"):
                if (pair := _local_and_original(name, source)) is not None:
                    found.append(ImportBinding(pair[0], pair[1], None))
        elif kind == "import_from_statement":
            module_node = child.child_by_field_name("module_name")
            if module_node is None:
                continue
            spec = "".join(_text(module_node, source).split())
            if any(c.type == "wildcard_import" for c in child.named_children):
                found.append(ImportBinding("*", spec, "*"))
            for name in child.children_by_field_name("name"):
                if (pair := _local_and_original(name, source)) is not None:
                    found.append(ImportBinding(pair[0], spec, pair[1]))
        elif kind in _PY_NESTING and depth < _NESTED_IMPORT_DEPTH:
            # Imports inside functions and try/if blocks bind names all the same.
            _python_imports(child, source, found, depth + 1)
        if len(found) >= MAX_BINDINGS:
            return


def _local_and_original(name: Node, source: bytes) -> tuple[str, str] | None:
    """``x as y`` -> ("y", "x"); ``x`` -> ("x", "x")."""
    if name.type != "aliased_import":
        text = _text(name, source)
        return text, text
    original = name.child_by_field_name("name")
    alias = name.child_by_field_name("alias")
    if original is None or alias is None:
        return None
    return _text(alias, source), _text(original, source)


def _js_imports(root: Node, source: bytes) -> list[ImportBinding]:
    found: list[ImportBinding] = []
    for node in root.named_children:
        spec_node = node.child_by_field_name("source")
        if spec_node is None or node.type not in ("import_statement", "export_statement"):
            continue
        spec = _text(spec_node, source).strip("'\"`")
        for child in node.named_children:
            if child.type == "import_clause":
                for part in child.named_children:
                    if part.type == "identifier":
                        found.append(ImportBinding(_text(part, source), spec, "default"))
                    elif part.type == "namespace_import":
                        local = _last_identifier(part, source)
                        if local:
                            found.append(ImportBinding(local, spec, None))
                    elif part.type == "named_imports":
                        found.extend(_specifiers(part, spec, source))
            elif child.type == "export_clause":
                found.extend(_specifiers(child, spec, source))
            elif child.type == "namespace_export":
                local = _last_identifier(child, source)
                if local:
                    found.append(ImportBinding(local, spec, None))
        if node.type == "export_statement" and any(c.type == "*" for c in node.children):
            if not any(c.type == "namespace_export" for c in node.named_children):
                found.append(ImportBinding("*", spec, "*"))
    return found


def _specifiers(node: Node, spec: str, source: bytes) -> list[ImportBinding]:
    found = []
    for specifier in node.named_children:
        name = specifier.child_by_field_name("name")
        if name is None:
            continue
        alias = specifier.child_by_field_name("alias")
        original = _text(name, source)
        found.append(ImportBinding(_text(alias or name, source), spec, original))
    return found


def _last_identifier(node: Node, source: bytes) -> str | None:
    names = [c for c in node.named_children if c.type == "identifier"]
    return _text(names[-1], source) if names else None


def _text(node: Node, source: bytes) -> str:
    return source[node.start_byte : node.end_byte].decode("utf-8", errors="replace")
