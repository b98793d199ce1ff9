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


# Words that may precede ``private`` in a member's declaration.
_MODIFIERS = frozenset(
    {
        *("public", "protected", "static", "final", "abstract", "readonly", "override"),
        *("async", "synchronized", "native", "transient", "volatile", "internal", "open"),
        *("sealed", "virtual", "declare", "default", "const", "inline", "export", "unsafe"),
    }
)


def public_member(name: str) -> bool:
    """A member name other files may use: not ``_private`` (Python's privacy is by name), but
    a class's constructor and call are its interface."""
    return not name.startswith("_") or name in ("__init__", "__call__")


def declared_private(line: str) -> bool:
    """A member declared ``private`` (Java, TypeScript, C#, Kotlin, Swift, PHP; annotations
    before its modifiers skipped) or named ``#name`` (JavaScript): no other file can use it.
    Python's privacy is by name (``_name``), Rust's and C++'s by what surrounds the member:
    neither is read here."""
    rest = line.strip()
    while rest.startswith("@"):  # `@Override`, `@SuppressWarnings("x")`
        end = 1
        while end < len(rest) and (rest[end].isalnum() or rest[end] in "_."):
            end += 1
        if rest.startswith("(", end):
            close = rest.find(")", end)
            if close == -1:
                return False
            end = close + 1
        rest = rest[end:].lstrip()
    if rest.startswith("#"):
        return True
    for word in rest.split(None, 6)[:6]:
        if word == "private":
            return True
        if word not in _MODIFIERS:
            return False
    return False


_CLASS_WORDS = ("class", "interface", "struct")
_BASE_MODIFIERS = frozenset({"public", "private", "protected", "virtual"})
MAX_BASE_TEXT = 400


def class_bases(text: str) -> tuple[str, ...]:
    """The classes a class declaration extends, as its head names them: Python's
    ``class A(B, m.C, Generic[T], metaclass=M)``, TypeScript's and Java's ``extends B
    implements I, J``, C++'s ``: public B``. Dotted as written (``m.C``; C++'s ``ns::B`` as
    ``ns.B``), type arguments cut; linear in the head, no regex."""
    for line in text.split("\n", 6)[:6]:
        padded = " " + line.strip()[:MAX_BASE_TEXT] + " "
        at, keyword = next(
            ((found, w) for w in _CLASS_WORDS if (found := padded.find(f" {w} ")) != -1),
            (-1, ""),
        )
        if at == -1:
            continue
        rest = padded[at + len(keyword) + 2 :].lstrip()
        name_end = 0
        while name_end < len(rest) and (rest[name_end].isalnum() or rest[name_end] in "_$"):
            name_end += 1
        rest = rest[name_end:].lstrip()
        if rest.startswith("<"):
            rest = rest[_closing(rest, 0) + 1 :].lstrip()
        if rest.startswith("(") and keyword == "class":  # Python (a Rust tuple struct: no)
            inside = rest[1 : _closing(rest, 0)]
            parts = [part for part in _split_top_level(inside) if "=" not in part]
        elif rest.startswith(":"):  # C++
            parts = [
                " ".join(w for w in part.split() if w not in _BASE_MODIFIERS)
                for part in _split_top_level(rest[1:].partition("{")[0])
            ]
        else:
            head = rest.partition("{")[0]
            parts = []
            for keyword in ("extends", "implements"):
                words = f" {head} ".split(f" {keyword} ", 1)
                if len(words) == 2:
                    listed = words[1].split(" implements ", 1)[0]
                    parts += _split_top_level(listed)
        bases = []
        for part in parts:
            plain = part.split("<", 1)[0].split("[", 1)[0].replace("::", ".").strip()
            if all(word.isidentifier() for word in plain.split(".")) and plain not in bases:
                bases.append(plain)
        return tuple(bases)
    return ()


def _closing(text: str, start: int) -> int:
    """The index of the bracket closing the one at ``start`` (the text's end if none)."""
    depth = 0
    for index in range(start, len(text)):
        char = text[index]
        if char in "([<":
            depth += 1
        elif char in ")]>":
            depth -= 1
            if depth == 0:
                return index
    return len(text)


def _split_top_level(text: str) -> list[str]:
    """``text`` split at the commas outside brackets."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char in "([<":
            depth += 1
        elif char in ")]>":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return [part.strip() for part in parts if part.strip()]


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


def type_names(node: Node, source: bytes, language: str = "") -> tuple[str, ...]:
    """Identifiers in a declaration's return annotation (Python, TypeScript, Rust, Go); for a
    Python function without one, the class it returns an instance of (`_returned_class`)."""
    annotation = node.child_by_field_name("return_type") or node.child_by_field_name("result")
    if annotation is None and language == "python" and node.type == "function_definition":
        returned = _returned_class(node, source)
        return (returned,) if returned is not None else ()
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


# Statements of a function's body read for what it returns: a factory or a pytest fixture is
# short, and a bound keeps a huge generated function cheap.
MAX_BODY_STATEMENTS = 60


def _returned_class(function: Node, source: bytes) -> str | None:
    """The class an unannotated Python function returns or yields an instance of, as its own
    body's statements say: ``return Flask(...)``, or ``app = Flask(...)`` then ``return app``
    / ``yield app`` (a pytest fixture): the name capitalized (``flask.Flask``: ``Flask``)."""
    body = function.child_by_field_name("body")
    if body is None:
        return None
    assigned: dict[str, str] = {}
    for statement in body.named_children[:MAX_BODY_STATEMENTS]:
        node = statement.named_children[0] if statement.named_children else None
        if statement.type == "expression_statement" and node is not None:
            if node.type == "assignment":
                left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
                kind = _constructed(right, source)
                if left is not None and left.type == "identifier" and kind is not None:
                    assigned.setdefault(_text(left, source), kind)
                continue
            if node.type != "yield" or not node.named_children:
                continue
            node = node.named_children[0]
        elif statement.type != "return_statement" or node is None:
            continue
        if node.type == "identifier":
            found = assigned.get(_text(node, source))
            if found is not None:
                return found
        elif (kind := _constructed(node, source)) is not None:
            return kind
    return None


def _constructed(node: Node | None, source: bytes) -> str | None:
    """``Name(...)`` or ``module.Name(...)`` with Name capitalized: the class Name."""
    if node is None or node.type != "call":
        return None
    function = node.child_by_field_name("function")
    if function is None:
        return None
    if function.type == "attribute":
        function = function.child_by_field_name("attribute")
    if function is None or function.type != "identifier":
        return None
    name = _text(function, source)
    return name if name[:1].isupper() and name not in _BUILTIN_TYPES else None


def import_bindings(root: Node, language: str, source: bytes) -> list[ImportBinding]:
    if language == "python":
        found: list[ImportBinding] = []
        _python_imports(root, source, found, 0)
        return found[:MAX_BINDINGS]
    if language in ("javascript", "typescript", "tsx"):
        return _js_imports(root, source)[:MAX_BINDINGS]
    if language == "go":
        return _go_imports(root, source)[:MAX_BINDINGS]
    if language == "rust":
        found = []
        for node in root.named_children:
            if node.type == "use_declaration":
                argument = node.child_by_field_name("argument")
                if argument is not None:
                    _rust_use(argument, (), source, found, 0)
        return found[:MAX_BINDINGS]
    if language == "java":
        return _java_imports(root, source)[:MAX_BINDINGS]
    return []


def go_package_name(import_path: str) -> str:
    """The name a Go import binds without an alias: its last segment, less a major version
    (``.../v2``, ``yaml.v3``) and the customary ``go-`` / ``-go`` affixes."""
    parts = [p for p in import_path.split("/") if p]
    if len(parts) > 1 and re.fullmatch(r"v[0-9]{1,4}", parts[-1]):
        parts.pop()
    name = parts[-1] if parts else import_path
    name = name.split(".v", 1)[0] if ".v" in name else name
    name = name.removeprefix("go-").removesuffix("-go")
    return name.replace("-", "_").replace(".", "_")


def _go_imports(root: Node, source: bytes) -> list[ImportBinding]:
    """``import f "a/b"`` binds f to the package (module ``a/b``, imported None); a dot import
    makes its names visible unqualified (``*``); ``_`` binds nothing."""
    found: list[ImportBinding] = []
    for declaration in root.named_children:
        if declaration.type != "import_declaration":
            continue
        specs = [
            spec
            for child in declaration.named_children
            for spec in (child.named_children if child.type == "import_spec_list" else [child])
            if spec.type == "import_spec"
        ]
        for spec in specs:
            path_node = spec.child_by_field_name("path")
            if path_node is None:
                continue
            path = _text(path_node, source).strip('"`')
            name_node = spec.child_by_field_name("name")
            name = _text(name_node, source) if name_node is not None else None
            if name == "_":
                continue
            if name == ".":
                found.append(ImportBinding("*", path, "*"))
            else:
                found.append(ImportBinding(name or go_package_name(path), path, None))
    return found


def _rust_use(
    node: Node, prefix: tuple[str, ...], source: bytes, found: list[ImportBinding], depth: int
) -> None:
    """A use tree: ``module`` is the path before the name, ``::``-joined as written
    (``crate::a``, ``super::b``, ``other_crate::c``)."""
    if depth > 8 or len(found) >= MAX_BINDINGS:
        return
    kind = node.type
    if kind in ("scoped_identifier", "identifier", "crate", "super", "self"):
        parts = (*prefix, *_rust_path(node, source))
        if parts and parts[-1] == "self":  # `use a::{self}`: the module itself
            parts = parts[:-1]
        if not parts:
            return
        if len(parts) == 1:
            found.append(ImportBinding(parts[0], parts[0], None))
        else:
            found.append(ImportBinding(parts[-1], "::".join(parts[:-1]), parts[-1]))
    elif kind == "use_as_clause":
        path = node.child_by_field_name("path")
        alias = node.child_by_field_name("alias")
        if path is not None and alias is not None:
            parts = (*prefix, *_rust_path(path, source))
            if len(parts) > 1:
                found.append(ImportBinding(_text(alias, source), "::".join(parts[:-1]), parts[-1]))
    elif kind == "use_wildcard":
        path = next((c for c in node.named_children), None)
        parts = (*prefix, *(_rust_path(path, source) if path is not None else ()))
        if parts:
            found.append(ImportBinding("*", "::".join(parts), "*"))
    elif kind == "scoped_use_list":
        path = node.child_by_field_name("path")
        inner = node.child_by_field_name("list")
        parts = (*prefix, *(_rust_path(path, source) if path is not None else ()))
        if inner is not None:
            _rust_use(inner, parts, source, found, depth + 1)
    elif kind == "use_list":
        for child in node.named_children:
            _rust_use(child, prefix, source, found, depth + 1)


def _rust_path(node: Node, source: bytes) -> tuple[str, ...]:
    return tuple(part for part in _text(node, source).replace(" ", "").split("::") if part)


def _java_imports(root: Node, source: bytes) -> list[ImportBinding]:
    """``import a.b.C;`` binds C to the class in a/b/C.java; ``import static a.b.C.m;`` binds
    m of that class; ``a.b.*`` makes the package's classes visible (``*``)."""
    found: list[ImportBinding] = []
    for node in root.named_children:
        if node.type != "import_declaration":
            continue
        path = next((c for c in node.named_children if c.type == "scoped_identifier"), None)
        if path is None:
            continue
        parts = _text(path, source).replace(" ", "").split(".")
        is_static = any(c.type == "static" for c in node.children)
        if any(c.type == "asterisk" for c in node.children):
            found.append(ImportBinding("*", ".".join(parts), "*"))
        elif is_static and len(parts) > 2:
            found.append(ImportBinding(parts[-1], ".".join(parts[:-1]), parts[-1]))
        elif len(parts) > 1:
            found.append(ImportBinding(parts[-1], ".".join(parts), parts[-1]))
    return found


def _python_imports(node: Node, source: bytes, found: list[ImportBinding], depth: int) -> None:
    for child in node.named_children:
        kind = child.type
        if kind == "import_statement":
            for name in child.children_by_field_name("name"):
                if (pair := _local_and_original(name, source)) is not None:
                    found.append(ImportBinding(pair[0], pair[1], None))
                    if name.type != "aliased_import" and "." in pair[0]:
                        # `import click.types` binds `click` too: `click.Group` is the package's.
                        top = pair[0].split(".", 1)[0]
                        package = ImportBinding(top, top, None)
                        if package not in found:
                            found.append(package)
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
