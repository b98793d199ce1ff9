"""Does the prompt hold the definitions the next line needs? (model-free)

On real public projects (PyPI sdists, npm tarballs: tests/support/corpus.py), cursor positions
are sampled at lines that use a name declared in another file of the same repository (in one or
two places: a name declared everywhere names nothing in particular). The line is emptied (the
user is about to write it), the real daemon (``python -m lsp`` over stdio) is asked for an
inline completion there, and the prompt it sends is captured by a recording server whose
``/tokenize`` counts with a real BPE tokenizer (SmolLM2's, from the embedded model; the model
list names its folder, so the daemon counts with it at once, as beside vLLM). A name
counts as present when the prompt holds its declaration's head (``def name(``, ``class Name``,
``export function name`` as the source writes it).

Rows, per repository and overall, each the share of names present with a 95% bootstrap
interval (positions resampled):
- ours: the daemon as shipped, on the first request after the file is opened and once settled;
- current file only: the same daemon without the repository index;
- retrieval: the current-file prompt plus the top 10-line chunks of other files by identifier
  overlap with the 20 lines above the cursor (Jaccard), in the repository share of the budget,
  as repository-level FIM evaluations do;
- oracle: the tokens the needed declarations themselves cost.

    .venv/bin/python -m bench.context_recall [--positions 80] [--budgets 2048 4096]
        [--languages python typescript go rust] [--projects NAME ...]
"""

from __future__ import annotations

import argparse
import asyncio
import builtins
import keyword
import random
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from bench.common import lsp_client
from engine.definitions.repository import REPOSITORY_SHARE
from engine.repository.headers import FileHeader, parse
from engine.repository.index import RepositoryIndex
from engine.repository.languages import language_for
from engine.repository.parsing import InProcessParser
from engine.repository.symbols import identifiers
from tests.support.corpus import OTHER_LANGUAGES, PROJECTS, Project, project_root
from tests.support.fake_server import fake_server

LANGUAGE_IDS = {
    "python": "python",
    "typescript": "typescript",
    "go": "go",
    "rust": "rust",
    "java": "java",
    "c": "c",
    "cpp": "cpp",
}
EXTENSIONS = {
    "python": (".py",),
    "typescript": (".ts", ".tsx"),
    "go": (".go",),
    "rust": (".rs",),
    "java": (".java",),
    "c": (".c", ".h"),
    "cpp": (".cpp", ".cc", ".hpp", ".h"),
}
MAX_PER_FILE = 4
CHUNK_LINES = 10
QUERY_LINES = 20
# Words that are never a repository's declaration, whatever a file happens to call a member.
_NOT_NAMES = frozenset(
    {
        *keyword.kwlist,
        *keyword.softkwlist,
        "null",
        "undefined",
        "this",
        "self",
        "cls",
        "function",
        "interface",
        "const",
        "let",
        "var",
        "new",
        "typeof",
        "instanceof",
        "extends",
        "implements",
        "export",
        "default",
        "string",
        "number",
        "boolean",
        "void",
        "any",
        "unknown",
        "never",
        "object",
        "symbol",
        "bigint",
        "true",
        "false",
        "super",
        # Go and Rust keywords and built-in types.
        "func",
        "package",
        "struct",
        "type",
        "map",
        "chan",
        "range",
        "defer",
        "nil",
        "error",
        "int",
        "bool",
        "byte",
        "fn",
        "impl",
        "trait",
        "enum",
        "pub",
        "mut",
        "use",
        "mod",
        "crate",
        "Self",
        "match",
        "Some",
        "None",
        "Ok",
        "Err",
        "Option",
        "Result",
        "Vec",
        "String",
        "Box",
        "usize",
        "u8",
        "u32",
        "u64",
        "i32",
        "i64",
        "str",
        "where",
        "dyn",
        "ref",
        "unsafe",
        "loop",
        "while",
        # Java, C and C++.
        "public",
        "private",
        "protected",
        "static",
        "final",
        "abstract",
        "synchronized",
        "throws",
        "Override",
        "Object",
        "Integer",
        "Boolean",
        "Exception",
        "char",
        "long",
        "short",
        "double",
        "float",
        "unsigned",
        "signed",
        "sizeof",
        "typedef",
        "NULL",
        "nullptr",
        "include",
        "define",
        "ifdef",
        "ifndef",
        "endif",
        "size_t",
        "template",
        "typename",
        "namespace",
        "std",
        "auto",
        "inline",
        "extern",
        "volatile",
        "register",
        "goto",
        "case",
        "switch",
        "break",
        "continue",
        "else",
    }
)


_BINDING = re.compile(
    r"(?:\b(?:const|let|mut|var|def|class|function|for|as|import|fn|mod|struct|enum|trait)"
    r"\s+([A-Za-z_$][\w$]*))"
    r"|(?:(?:^|[(,{\s])([A-Za-z_$][\w$]*)\s*(?::(?!:)|=(?!=)|\bin\b))"
    # A typed parameter or variable (C, C++, Java, Go): `int* length,`, `Node node)`.
    r"|(?:(\w+|[>\]*&])[ \t]+[*&]*([A-Za-z_]\w*)[ \t]*(?=[,);=\[]))"
)
# Words before a name that make it an expression, not a declaration (`return value;`).
_NOT_TYPES = frozenset(
    {"return", "case", "throw", "new", "else", "goto", "yield", "await", "delete", "sizeof"}
    | {"typeof", "in", "of", "not", "and", "or", "is", "if", "while", "for", "switch", "do"}
)


_RUST_RAW_STRING = re.compile(r'b?r(#*)"')


def code_only(line: str, language: str) -> str:
    """The line without its string literals and trailing comment: a word in a message or a
    comment is not a use of a declaration. Single quotes delimit strings in Python and
    every language but Rust (where one quote starts a lifetime)."""
    quotes = '"`' if language == "rust" else "\"'`"
    comment = "#" if language == "python" else "//"
    out: list[str] = []
    index, closing = 0, ""
    while index < len(line):
        char = line[index]
        if closing:
            if char == "\\":
                index += 2
                continue
            if char == closing:
                closing = ""
            index += 1
            continue
        if line.startswith(comment, index):
            break
        if language == "rust" and (raw := _RUST_RAW_STRING.match(line, index)):
            # r#"...{ "a" = 1 }..."#: inner quotes do not close it, only `"` and its hashes.
            if index == 0 or not (line[index - 1].isalnum() or line[index - 1] == "_"):
                end = line.find('"' + raw.group(1), raw.end())
                out.append(" ")
                index = len(line) if end == -1 else end + 1 + len(raw.group(1))
                continue
        if char in quotes:
            closing = char
            out.append(" ")
        elif char == "/" and language == "typescript" and _starts_regex(line, index):
            index = _regex_end(line, index + 1)
            out.append(" ")
            continue
        else:
            out.append(char)
        index += 1
    return "".join(out)


def _starts_regex(line: str, index: int) -> bool:
    """A `/` that opens a TypeScript regex literal (`.toThrow(/not valid/)`), not a division:
    what precedes it cannot end an operand."""
    before = line[:index].rstrip()
    if line.startswith(("/", "*"), index + 1):
        return False  # a comment
    return not before or before[-1] in "(,=:[!&|?{};+-*%~^" or before.endswith("return")


def _regex_end(line: str, index: int) -> int:
    """Just past the regex literal's closing `/` (escapes and `[...]` classes skipped)."""
    in_class = False
    while index < len(line):
        char = line[index]
        if char == "\\":
            index += 2
            continue
        if char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char == "/" and not in_class:
            return index + 1
        index += 1
    return index


# A language's own types and functions, whatever a repository happens to declare by the name
# (serde-json declares `fn f64`; Go's `len`, `append` are built in).
BUILTINS: dict[str, frozenset[str]] = {
    "rust": frozenset(
        "f32 f64 i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize str char bool Box "
        "Rc Arc Cow RefCell Cell HashMap HashSet BTreeMap BTreeSet VecDeque PhantomData".split()
    ),
    "go": frozenset(
        "int8 int16 int32 int64 uint uint8 uint16 uint32 uint64 uintptr float32 float64 "
        "complex64 complex128 rune any len cap append make panic recover copy delete close "
        "print println iota".split()
    ),
}


# Methods of a language's built-in types: after a dot, the line means the standard one far more
# often than a repository's method of the same name (`version.replace(".", "-")` on a str).
STANDARD_MEMBERS: dict[str, frozenset[str]] = {
    "python": frozenset(
        name
        for kind in (str, bytes, list, dict, set, tuple, int, float, Path, re.Match, re.Pattern)
        for name in dir(kind)
        if not name.startswith("_")
    ),
    "typescript": frozenset(
        (
            "length push pop shift unshift slice splice concat join map filter reduce forEach "
            "find findIndex some every includes indexOf keys values entries get set has delete "
            "add clear then catch finally toString replace split trim startsWith endsWith "
            "toLowerCase toUpperCase apply call bind sort reverse flat flatMap fill at assign "
            "freeze parse stringify padStart padEnd charAt substring match test exec size"
        ).split()
    ),
    "rust": frozenset(
        (
            "len is_empty push pop insert remove get get_mut contains iter iter_mut into_iter "
            "map and_then unwrap unwrap_or unwrap_or_else expect ok ok_or err clone to_string "
            "to_owned as_str as_ref as_mut parse collect next chars bytes trim split starts_with "
            "ends_with extend join first last take skip filter fold any all rev zip enumerate "
            "cmp eq fmt write_str write_fmt borrow borrow_mut lock is_some is_none is_ok is_err "
            "clear position to_vec flush replace push_str as_bytes sort sort_by sort_by_key "
            "dedup retain truncate drain entry or_insert or_insert_with or_default map_err "
            "unwrap_or_default as_deref copied cloned saturating_sub saturating_add checked_add "
            "checked_sub checked_mul wrapping_add wrapping_sub min max abs write write_all read "
            "chain peekable peek count sum step_by windows chunks split_at char_indices lines "
            "to_lowercase to_uppercase as_slice extend_from_slice with_capacity capacity reserve "
            "swap contains_key keys values values_mut into_inner get_ref ok_or_else map_or "
            "map_or_else filter_map flat_map for_each max_by_key min_by_key binary_search "
            "is_whitespace is_alphanumeric is_ascii is_digit to_digit trim_start trim_end "
            "strip_prefix strip_suffix splitn rsplit rfind find into from default hash "
            "partial_cmp deref deref_mut drop index index_mut unwrap_err as_ptr split_off"
        ).split()
    ),
    # java.lang's Object, String, StringBuilder and Class, java.util's collections, streams
    # and Optional, java.io's streams, the DOM's nodes: `out.add(code)` is a List's.
    "java": frozenset(
        (
            "equals hashCode toString getClass length charAt substring indexOf lastIndexOf "
            "startsWith endsWith trim split replace replaceAll isEmpty toLowerCase toUpperCase "
            "contains format valueOf append insert reverse setLength getName getSimpleName "
            "getMethod getMethods getDeclaredMethod getDeclaredMethods getField getDeclaredField "
            "getConstructor newInstance isInstance isAssignableFrom getSuperclass getInterfaces "
            "getModifiers getReturnType getParameterTypes invoke setAccessible add addAll get set "
            "remove removeAll clear size put putAll containsKey containsValue keySet values "
            "entrySet getKey getValue iterator hasNext next stream map filter collect forEach "
            "toArray sort of ofNullable orElse isPresent ifPresent read write close flush "
            "getParent toURI toURL getPath getAbsolutePath exists getLength item getAttributes "
            "getNodeName getNodeValue getTextContent getChildNodes getFirstChild getNextSibling "
            "start join run call getMessage getCause printStackTrace compareTo intValue longValue "
            "doubleValue booleanValue"
        ).split()
    ),
}


# Languages whose files use each other's declarations (C++ includes C headers; TypeScript
# imports JavaScript). Any other pair never does: a Java `sb.append(s)` is StringBuilder's,
# whatever the repository's Python declares.
_FAMILIES = {"cpp": "c", "tsx": "typescript", "javascript": "typescript"}


def same_family(path: str, other: str) -> bool:
    """Whether code in ``other`` can use a declaration of ``path``: their languages are one
    family (jpype's Java files call no method of its C++ and Python)."""
    first, second = language_for(path), language_for(other)
    return _FAMILIES.get(first or "", first) == _FAMILIES.get(second or "", second)


def outside_owners(index: RepositoryIndex, path: str, header: FileHeader) -> frozenset[str]:
    """The file's local names for modules outside the repository (`fmt`, `errors`, `os`,
    `std`): `errors.New` is Go's, whatever the repository calls New."""
    resolver = index.resolver()
    owners = {"std", "core", "alloc"} if header.language == "rust" else set()
    for binding in header.bindings:
        if binding.local == "*":
            continue
        if header.language == "go":
            inside = resolver.go_package(binding.module) is not None
        else:
            inside = resolver.module_path(path, header.language, binding.module) is not None
        if not inside:
            owners.add(binding.local)
    return frozenset(owners)


_PATH_ROOT = re.compile(r"(?<![\w:])([a-z_][a-z0-9_]*)::")


def crates(
    code: str, index: RepositoryIndex, path: str, bound: dict[str, set[int]]
) -> frozenset[str]:
    """Rust paths' first parts that name a crate outside the repository (`serde::de::...`
    written out, with no `use`): neither this crate's modules nor a name the file binds."""
    resolver = index.resolver()
    return frozenset(
        root
        for root in _PATH_ROOT.findall(code)
        if root not in ("crate", "self", "super")
        and root not in bound
        and resolver.module_path(path, "rust", root) is None
    )


def _uses(code: str, name: str) -> Iterator[int]:
    """Where ``name`` occurs in ``code`` as a whole word."""
    at = code.find(name)
    while at != -1:
        end = at + len(name)
        if (at == 0 or not (code[at - 1].isalnum() or code[at - 1] in "_$")) and (
            end == len(code) or not (code[end].isalnum() or code[end] in "_$")
        ):
            yield at
        at = code.find(name, end)


# Languages where another file's class or namespace member is never named bare (Python's
# `self.x`, JavaScript's `this.x`, `ns.Name`); Java, C++ and Rust see inherited members and
# imported enum variants bare.
QUALIFIED_MEMBERS = frozenset({"python", "javascript", "typescript"})


def qualified_only(code: str, name: str, owners: frozenset[str]) -> bool:
    """Every use of ``name`` on the line is qualified by one of ``owners`` (``errors.New``,
    ``fmt::Formatter``)."""
    if not owners:
        return False
    seen = False
    for at in _uses(code, name):
        before, owner = code[:at].rstrip(), ""
        # Back through the path to its first part, which decides: `std::mem::replace`,
        # `os.path.join`.
        while before.endswith("::") or (before.endswith(".") and not before.endswith("..")):
            before = before[: -2 if before.endswith("::") else -1]
            start = len(before)
            while start > 0 and (before[start - 1].isalnum() or before[start - 1] in "_$"):
                start -= 1
            owner, before = before[start:], before[:start].rstrip()
        if owner not in owners:
            return False
        seen = True
    return seen


def _python_builtin(name: str) -> bool:
    """``classmethod``, ``open``, ``__eq__``: the language's, whoever else declares them."""
    return name in _PYTHON_BUILTINS or (name.startswith("__") and name.endswith("__"))


_PYTHON_BUILTINS = frozenset(dir(builtins))


def macro_only(code: str, name: str) -> bool:
    """Every use of ``name`` on the line invokes a Rust macro (``parse!(...)``): the index
    declares no macros, so the repository's function of that name is not what it uses."""
    seen = False
    for at in _uses(code, name):
        end = at + len(name)
        if code[end : end + 1] != "!" or code[end + 1 : end + 2] == "=":
            return False
        seen = True
    return seen


def bare_only(code: str, name: str) -> bool:
    """No use of ``name`` on the line follows a dot or ``::`` (``name(...)``, ``: Name``)."""
    seen = False
    for at in _uses(code, name):
        if code[:at].rstrip().endswith((".", "::")):
            return False
        seen = True
    return seen


def attribute_only(code: str, name: str) -> bool:
    """Every use of ``name`` on the line follows a dot (``x.name``): a member, not a name."""
    seen = False
    for at in _uses(code, name):
        if code[:at].rstrip()[-1:] != ".":
            return False
        seen = True
    return seen


def bound_names(lines: list[str], language: str = "python") -> dict[str, set[int]]:
    """Names the file itself binds (local variables, parameters, loop variables) and on which
    lines: a line using one does not need another file's declaration of it."""
    found: dict[str, set[int]] = {}
    for number, line in enumerate(lines):
        for match in _BINDING.finditer(line):
            if match.group(4) and (
                language not in ("c", "cpp", "java") or match.group(3) in _NOT_TYPES
            ):
                continue  # Go writes the name before the type: `cmd *Command` binds cmd
            name = match.group(1) or match.group(2) or match.group(4)
            found.setdefault(name, set()).add(number)
        for name in parameters(line, language):
            found.setdefault(name, set()).add(number)
    return found


# Words before `(...) {` that make it a statement, not a function taking parameters.
_STATEMENT_WORDS = frozenset({"if", "for", "while", "switch", "return", "await", "with", "elif"})


def parameters(line: str, language: str) -> list[str]:
    """Names a line binds as parameters: JavaScript/TypeScript arrow functions (`(val, ctx) =>`,
    `x =>`), methods and functions (`get(obj, name) {`), `catch (error)`; Python lambdas."""
    found: list[str] = []
    if language == "python":
        at = line.find("lambda ")
        while at != -1:
            found += identifiers(line[at + 7 :].split(":", 1)[0])
            at = line.find("lambda ", at + 7)
        return found
    if language != "typescript":
        return found
    at = line.find("=>")
    while at != -1:
        before = line[:at].rstrip()
        if before.endswith(")"):
            found += _parameter_names(before[_opening(before) + 1 : -1])
        elif before and (words := identifiers(before[-40:])):
            found.append(words[-1])
        at = line.find("=>", at + 2)
    stripped = line.rstrip()
    if stripped.endswith("{") and ")" in stripped:
        head = stripped[: stripped.rfind(")") + 1]
        opening = _opening(head)
        words = identifiers(head[:opening][-40:])
        if words and words[-1] not in _STATEMENT_WORDS:
            found += _parameter_names(head[opening + 1 : -1])
    return found


def _opening(text: str) -> int:
    """The index of the `(` that the `)` ending ``text`` closes."""
    depth = 0
    for index in range(len(text) - 1, -1, -1):
        if text[index] == ")":
            depth += 1
        elif text[index] == "(":
            depth -= 1
            if depth == 0:
                return index
    return 0


def _parameter_names(inside: str) -> list[str]:
    names: list[str] = []
    for part in inside.split(","):
        part = part.strip().removeprefix("...")
        if part.startswith(("{", "[")):
            names += identifiers(part.split("=", 1)[0])  # destructured: every name binds
        elif words := identifiers(part.split(":", 1)[0].split("=", 1)[0]):
            names.append(words[0])
    return names


@dataclass(frozen=True)
class Needed:
    name: str
    anchors: tuple[str, ...]  # any one in the prompt: present
    cost_text: str  # what the declaration costs to show (its signature lines)


@dataclass(frozen=True)
class Position:
    path: str
    line: int
    text: str  # the file with that line emptied after its indentation
    cursor_line: int
    cursor_character: int
    needed: tuple[Needed, ...]
    emptied: str = ""  # the line as the file had it


@dataclass
class Tally:
    hits: list[list[bool]] = field(default_factory=list)  # per position, per needed name

    def add(self, flags: list[bool]) -> None:
        self.hits.append(flags)

    def share(self) -> float:
        flat = [f for flags in self.hits for f in flags]
        return sum(flat) / len(flat) if flat else float("nan")

    def interval(self, rounds: int = 1000, seed: int = 7) -> tuple[float, float]:
        rng = random.Random(seed)
        shares = []
        for _ in range(rounds):
            sample = [rng.choice(self.hits) for _ in self.hits]
            flat = [f for flags in sample for f in flags]
            shares.append(sum(flat) / len(flat) if flat else 0.0)
        shares.sort()
        return shares[int(rounds * 0.025)], shares[int(rounds * 0.975)]

    def cell(self) -> str:
        low, high = self.interval()
        return f"{self.share():.0%} [{low:.0%}, {high:.0%}]"


def declaration_anchor(source_lines: list[str], line: int, name: str) -> str | None:
    """The declaration's head as written: the stripped line up to just past the name."""
    word = re.compile(rf"(?<![\w$]){re.escape(name)}(?![\w$])")
    for index in range(line, min(line + 6, len(source_lines))):
        raw = source_lines[index].strip()
        found = word.search(raw)
        if found is not None:
            end = found.end()
            head = raw[: end + 1].rstrip() if end < len(raw) else raw
            return head if len(head) > len(name) + 1 else None
    return None


def lines_inside_literals(source: bytes, language: str | None) -> set[int]:
    """Lines that a multi-line comment or string continues onto (a doc block, a raw
    string): their words are prose, not uses of declarations."""
    if language is None or language not in EXTENSIONS:
        return set()
    found: set[int] = set()
    pending = [parse(language, source).root_node]
    while pending:
        node = pending.pop()
        # A node ending at column 0 ends on the line before (Rust's `//` comments hold their
        # line break).
        last = node.end_point[0] - (1 if node.end_point[1] == 0 else 0)
        if node.start_point[0] >= last:
            continue
        if "comment" in node.type or "string" in node.type or node.type == "text_block":
            found.update(range(node.start_point[0] + 1, last + 1))
        elif node.type == "export_statement" and node.child_by_field_name("source"):
            # `export {\n  A,\n  type B,\n} from './x'`: a re-export's lines import, not use.
            found.update(range(node.start_point[0], last + 1))
        else:
            pending.extend(node.children)
    return found


def sample_positions(root: Path, project: Project, count: int, seed: int) -> list[Position]:
    # Parsed in this process without a time limit: the sample must not depend on the load.
    index = RepositoryIndex(root, parser=InProcessParser())
    index.build_blocking()
    extensions = EXTENSIONS[project.language]
    sources: dict[str, list[str]] = {}

    def lines_of(path: str) -> list[str]:
        if path not in sources:
            sources[path] = (root / path).read_text(encoding="utf-8", errors="replace").split("\n")
        return sources[path]

    candidates: list[Position] = []
    for path in sorted(index.paths()):
        if not path.endswith(extensions) or path.endswith(".d.ts"):
            continue
        header = index.header(path)
        if header is None:
            continue
        local = {d.name for d in header.definitions}
        # The continuation lines of multi-line imports (`from m import (` ... `)`, Rust use
        # lists): emptying one removes the import itself, there is nothing to look up.
        inside_imports = {
            line.strip() for statement in header.imports for line in statement.splitlines()[1:]
        }
        lines = lines_of(path)
        bound = bound_names(lines, project.language)
        outside = outside_owners(index, path, header)
        in_literal = lines_inside_literals((root / path).read_bytes(), header.language)
        per_file = []
        for number, line in enumerate(lines):
            stripped = line.strip()
            if (
                not stripped
                or number in in_literal
                or stripped in inside_imports
                or stripped.startswith(
                    (
                        "#",
                        "//",
                        "*",
                        "/*",
                        "import ",
                        "from ",
                        "export *",
                        "export {",  # a re-export: emptying it removes the import
                        "export type {",
                        '"',
                        "use ",
                        "pub use ",
                        "package ",
                    )
                )
                or len(stripped) > 200
            ):
                continue
            needed = []
            code = code_only(stripped, project.language)
            for name in identifiers(code):
                if name in local or len(name) < 3 or name in _NOT_NAMES:
                    continue
                if (
                    name in bound
                    or (
                        name in STANDARD_MEMBERS.get(project.language, ())
                        and attribute_only(code, name)
                    )
                    or (project.language == "python" and _python_builtin(name))
                    or name in BUILTINS.get(project.language, ())
                    or (project.language == "rust" and macro_only(code, name))
                    or name in outside  # imported from outside the repository
                    or qualified_only(
                        code,
                        name,
                        outside | crates(code, index, path, bound)
                        if project.language == "rust"
                        else outside,
                    )
                ):
                    # Bound in the file, on this line too (`flush: bool = False`, `title=`,
                    # `row_count = ...` declare a name, they need no other file's), or a
                    # method of the language's own types (`"".join`, `v.len()`, `xs.push`).
                    continue
                places = [
                    p
                    for p in index.declarations(name)
                    if p.path != path and same_family(p.path, path)
                ]
                if not places or len({p.path for p in places}) > 2 or len(places) > 3:
                    continue
                if (
                    project.language in QUALIFIED_MEMBERS
                    and all(p.definition.container is not None for p in places)
                    and bare_only(code, name)
                ):
                    # `new Request(url)`: only a namespace's or class's member is declared by
                    # that name, and no line of another file reaches one without its owner
                    # (`x.name`, `JSONRPC2.Request`): the global is what the line uses.
                    continue
                anchors = tuple(
                    a
                    for p in places
                    if (a := declaration_anchor(lines_of(p.path), p.definition.line, name))
                )
                if anchors:
                    cost = min((p.definition.shown for p in places), key=len)
                    needed.append(Needed(name, anchors, cost))
            if needed:
                indent = line[: len(line) - len(line.lstrip())]
                emptied = [*lines[:number], indent, *lines[number + 1 :]]
                per_file.append(
                    Position(
                        path,
                        number,
                        "\n".join(emptied),
                        number,
                        len(indent),
                        tuple(needed),
                        stripped,
                    )
                )
        rng = random.Random(f"{seed}:{path}")
        candidates += rng.sample(per_file, min(MAX_PER_FILE, len(per_file)))
    index.close()
    rng = random.Random(seed)
    return sorted(rng.sample(candidates, min(count, len(candidates))), key=lambda p: p.path)


_MARKER = re.compile(r"<\|[a-z_]{1,30}\|>")


def prompt_tokens(prompt: str, counter: Callable[[str], int]) -> int:
    """The prompt's tokens as a FIM model counts them: SmolLM2's tokenizer has no FIM markers
    and would spell each out in several tokens; a FIM tokenizer has one token for each."""
    markers = len(_MARKER.findall(prompt))
    return counter(_MARKER.sub("", prompt)) + markers


def present(prompt: str, needed: Needed) -> bool:
    return any(anchor in prompt for anchor in needed.anchors)


async def capture_prompts(
    root: Path,
    project: Project,
    positions: list[Position],
    budget: int,
    counter: Callable[[str], int],
    work: Path,
    index_enabled: bool,
    settle: bool = True,
) -> tuple[list[str], list[str], list[int]]:
    """(first prompt after opening, settled prompt, settled prompt tokens) per position."""
    async with fake_server() as server:
        server.reply = ""
        server.token_counter = counter
        # The daemon beside the server (team mode, a workstation's vLLM) counts tokens with the
        # served tokenizer at once; over /tokenize alone the counts arrive after a few
        # keystrokes and two requests would catch the file's window half filled.
        server.model_root = str(embedded_model_root())
        options = {
            "instruct": {"base_url": server.base_url, "timeout_s": 30},
            "completion": {"prompt_token_budget": budget, "debounce_ms": 0},
            "index": {"enabled": index_enabled, "cache_dir": str(work / "index-cache")},
            "log_file": str(work / "daemon.log"),
        }
        first, settled, tokens = [], [], []
        async with lsp_client(root, options) as client:
            await asyncio.sleep(1.5)  # the index's warm build (its disk cache is filled)
            for position in positions:
                uri = (root / position.path).as_uri()
                open_document(client, uri, position.text, LANGUAGE_IDS[project.language])
                first.append(await prompt_at(client, server, uri, position))
                if settle:
                    await asyncio.sleep(0.4)  # token counts arrive, the header is re-extracted
                prompt = await prompt_at(client, server, uri, position)
                settled.append(prompt)
                tokens.append(prompt_tokens(prompt, counter))
                client.text_document_did_close(
                    types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri))
                )
    return first, settled, tokens


def open_document(client: LanguageClient, uri: str, text: str, language: str) -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, language, 1, text))
    )


async def prompt_at(client: LanguageClient, server: object, uri: str, position: Position) -> str:
    prompts: list[str] = server.prompts  # type: ignore[attr-defined]
    before = len(prompts)
    await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri),
            position=types.Position(position.cursor_line, position.cursor_character),
            context=types.InlineCompletionContext(types.InlineCompletionTriggerKind.Invoked),
        )
    )
    return prompts[-1] if len(prompts) > before else ""


class Retrieval:
    """Top-k 10-line chunks of other files by identifier overlap (Jaccard) with the lines
    above the cursor, as repository-level FIM evaluations retrieve."""

    def __init__(self, root: Path, project: Project) -> None:
        self.chunks: list[tuple[str, str, frozenset[str]]] = []
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root).as_posix()
            if (
                not relative.endswith(EXTENSIONS[project.language])
                or relative.endswith(".d.ts")
                or "node_modules" in relative
                or "/dist/" in f"/{relative}"
            ):
                continue
            lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
            for start in range(0, len(lines), CHUNK_LINES):
                text = "\n".join(lines[start : start + CHUNK_LINES])
                words = frozenset(identifiers(text))
                if words:
                    self.chunks.append((relative, text, words))

    def context(self, position: Position, budget: int, counter: Callable[[str], int]) -> str:
        lines = position.text.split("\n")
        query = frozenset(
            identifiers("\n".join(lines[max(0, position.line - QUERY_LINES) : position.line]))
        )
        scored = sorted(
            (
                (len(query & words) / len(query | words), index)
                for index, (path, _, words) in enumerate(self.chunks)
                if path != position.path and query & words
            ),
            reverse=True,
        )
        picked, total = [], 0
        for _, index in scored:
            path, text, _ = self.chunks[index]
            cost = counter(text) + counter(path) + 2
            if total + cost > budget:
                continue
            picked.append(f"{path}\n{text}")
            total += cost
            if total > budget * 0.97:
                break
        return "\n".join(picked)


def embedded_model_root() -> Path:
    from engine.local.embedded_model import ensure_embedded_model

    return ensure_embedded_model()


def smollm_counter() -> Callable[[str], int]:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(embedded_model_root() / "tokenizer.json"))

    def count(text: str) -> int:
        # The FIM markers are single tokens of a FIM model's tokenizer (SmolLM2 has none).
        if text.startswith("<|") and text.endswith("|>") and len(text) < 40:
            return 1
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    return count


async def run(args: argparse.Namespace) -> None:
    counter = smollm_counter()
    pool = (*PROJECTS, *OTHER_LANGUAGES)
    chosen = [
        p
        for p in pool
        if (not args.projects or p.name in args.projects)
        and (not args.languages or p.language in args.languages)
    ]
    rows: dict[tuple[str, int], dict[str, Tally]] = {}
    costs: dict[str, list[int]] = {}
    sizes: dict[tuple[str, int], list[int]] = {}
    kinds: dict[tuple[str, int], tuple[Tally, Tally]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for project in chosen:
            root = project_root(project)
            started = time.perf_counter()
            positions = sample_positions(root, project, args.positions, args.seed)
            retrieval = Retrieval(root, project)
            costs[project.name] = [sum(counter(n.cost_text) for n in p.needed) for p in positions]
            names = sum(len(p.needed) for p in positions)
            print(f"{project.name}: {len(positions)} positions, {names} names", flush=True)
            for budget in args.budgets:
                work = Path(scratch) / f"{project.name}-{budget}"
                work.mkdir()
                # A warm disk cache, as on a daemon's second start.
                RepositoryIndex(root, work / "index-cache" / "").build_blocking()
                first, settled, tokens = await capture_prompts(
                    root, project, positions, budget, counter, work, True
                )
                _, alone, _ = await capture_prompts(
                    root, project, positions, budget, counter, work, False, settle=False
                )
                tallies = {k: Tally() for k in ("first", "ours", "alone", "retrieval")}
                for index, position in enumerate(positions):
                    extra = retrieval.context(position, int(budget * REPOSITORY_SHARE), counter)
                    for key, prompt in (
                        ("first", first[index]),
                        ("ours", settled[index]),
                        ("alone", alone[index]),
                        ("retrieval", alone[index] + "\n" + extra),
                    ):
                        tallies[key].add([present(prompt, n) for n in position.needed])
                rows[(project.name, budget)] = tallies
                kinds[(project.name, budget)] = split_by_kind(positions, tallies["ours"])
                if args.misses:
                    print_misses(positions, settled, args.misses)
                sizes[(project.name, budget)] = tokens
                over = sum(1 for t in tokens if t > budget)
                tier = statistics.mean(
                    prompt_tokens(prompt[: prompt.rfind(position.path)], counter)
                    for prompt, position in zip(settled, positions, strict=True)
                )
                missing = sum(1 for prompts in (first, settled, alone) for p in prompts if not p)
                if missing:
                    print(f"  {missing} requests sent no prompt", flush=True)
                print(
                    f"  budget {budget}: ours {tallies['ours'].cell()}, first request "
                    f"{tallies['first'].cell()}, file only {tallies['alone'].cell()}, "
                    f"retrieval {tallies['retrieval'].cell()}; prompt tokens mean "
                    f"{statistics.mean(tokens):.0f}, max {max(tokens)}, over budget {over}; "
                    f"before the current file {tier:.0f} "
                    f"(its share {budget * REPOSITORY_SHARE:.0f})",
                    flush=True,
                )
            print(f"  ({time.perf_counter() - started:.0f} s)", flush=True)
    print_table(rows, costs, sizes, args.budgets, [p.name for p in chosen])
    print_kinds(kinds, args.budgets, [p.name for p in chosen])
    print_languages(rows, args.budgets, chosen)


def print_misses(positions: list[Position], prompts: list[str], limit: int) -> None:
    """The names the settled prompt lacked, with the line that uses them: where to look."""
    shown = 0
    for position, prompt in zip(positions, prompts, strict=True):
        for needed in position.needed:
            if present(prompt, needed) or shown >= limit:
                continue
            shown += 1
            where = f"{position.path}:{position.line + 1}"
            print(f"    miss {where} {needed.name}: {position.emptied[:100]}")


_TEST_FOLDERS = frozenset({"test", "tests", "__tests__", "testing", "spec", "specs", "testdata"})


def is_test_path(path: str) -> bool:
    """A test file by the conventions of the languages read: a test folder, ``test_x.py``,
    ``x_test.go``, ``x.test.ts`` / ``x.spec.ts``, ``XTest.java``."""
    *folders, name = path.split("/")
    stem = name.rsplit(".", 1)[0]
    return (
        any(folder in _TEST_FOLDERS for folder in folders)
        or stem.startswith(("test_", "tests_"))
        or stem.endswith(("_test", ".test", ".spec", "Test", "Tests"))
        or stem in ("test", "tests", "conftest")
    )


def split_by_kind(positions: list[Position], tally: Tally) -> tuple[Tally, Tally]:
    """(source files, test files): the positions' flags split by the file's kind."""
    source, tests = Tally(), Tally()
    for position, flags in zip(positions, tally.hits, strict=True):
        (tests if is_test_path(position.path) else source).add(flags)
    return source, tests


def print_table(
    rows: dict[tuple[str, int], dict[str, Tally]],
    costs: dict[str, list[int]],
    sizes: dict[tuple[str, int], list[int]],
    budgets: list[int],
    names: list[str],
) -> None:
    for budget in budgets:
        print(f"\n### Budget {budget} tokens\n")
        print(
            "| repository | ours | ours, first request after opening | current file only | "
            "retrieval (top-k chunks) | oracle tokens (mean) | prompt tokens (mean / max) |"
        )
        print("|---|---|---|---|---|---|---|")
        totals = {k: Tally() for k in ("ours", "first", "alone", "retrieval")}
        for name in names:
            tallies = rows[(name, budget)]
            for key, tally in totals.items():
                tally.hits += tallies[key].hits
            tokens = sizes[(name, budget)]
            print(
                f"| {name} | {tallies['ours'].cell()} | {tallies['first'].cell()} | "
                f"{tallies['alone'].cell()} | {tallies['retrieval'].cell()} | "
                f"{statistics.mean(costs[name]):.0f} | "
                f"{statistics.mean(tokens):.0f} / {max(tokens)} |"
            )
        means = {
            key: statistics.mean(rows[(n, budget)][key].share() for n in names) for key in totals
        }
        print(
            f"| **mean over repositories** | **{means['ours']:.0%}** | {means['first']:.0%} | "
            f"{means['alone']:.0%} | {means['retrieval']:.0%} | "
            f"{statistics.mean(c for n in names for c in costs[n]):.0f} | |"
        )
        print(
            f"| all names pooled | {totals['ours'].cell()} | {totals['first'].cell()} | "
            f"{totals['alone'].cell()} | {totals['retrieval'].cell()} | | |"
        )


def print_kinds(
    kinds: dict[tuple[str, int], tuple[Tally, Tally]], budgets: list[int], names: list[str]
) -> None:
    """Ours on source files and on test files apart: the mean over the repositories that have
    positions of that kind, and all their names pooled with an interval."""
    print("\n### Source files and test files (ours)\n")
    print("| budget | files | repositories | ours (mean) | ours, pooled | names |")
    print("|---|---|---|---|---|---|")
    for budget in budgets:
        for index, label in ((0, "source"), (1, "test")):
            tallies = [kinds[(n, budget)][index] for n in names if kinds[(n, budget)][index].hits]
            if not tallies:
                continue
            pooled = Tally([flags for tally in tallies for flags in tally.hits])
            mean = statistics.mean(tally.share() for tally in tallies)
            count = sum(len(flags) for flags in pooled.hits)
            print(
                f"| {budget} | {label} | {len(tallies)} | **{mean:.0%}** | {pooled.cell()} | "
                f"{count} |"
            )


def print_languages(
    rows: dict[tuple[str, int], dict[str, Tally]], budgets: list[int], chosen: list[Project]
) -> None:
    """Per language: the mean over its repositories, and its names pooled with an interval."""
    languages = list(dict.fromkeys(p.language for p in chosen))
    print("\n### Per language\n")
    print(
        "| language | budget | repositories | ours (mean) | ours, pooled | current file only | "
        "retrieval |"
    )
    print("|---|---|---|---|---|---|---|")
    for language in languages:
        names = [p.name for p in chosen if p.language == language]
        for budget in budgets:
            pooled = {k: Tally() for k in ("ours", "alone", "retrieval")}
            for name in names:
                for key, tally in pooled.items():
                    tally.hits += rows[(name, budget)][key].hits
            mean = statistics.mean(rows[(n, budget)]["ours"].share() for n in names)
            print(
                f"| {language} | {budget} | {len(names)} | **{mean:.0%}** | "
                f"{pooled['ours'].cell()} | {pooled['alone'].cell()} | "
                f"{pooled['retrieval'].cell()} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--positions", type=int, default=80)
    parser.add_argument("--budgets", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--projects", nargs="*", default=[])
    parser.add_argument("--languages", nargs="*", default=[])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--misses", type=int, default=0, help="print this many misses")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
