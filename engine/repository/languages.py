"""Grammars (single-language wheels: measured smaller-or-equal and offline, see bench/RESULTS.md)
and which file extensions they parse."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache

from tree_sitter import Language, Parser


@dataclass(frozen=True)
class LanguageSpec:
    name: str
    module: str
    function: str = "language"


SPECS = {
    "python": LanguageSpec("python", "tree_sitter_python"),
    "javascript": LanguageSpec("javascript", "tree_sitter_javascript"),
    "typescript": LanguageSpec("typescript", "tree_sitter_typescript", "language_typescript"),
    "tsx": LanguageSpec("tsx", "tree_sitter_typescript", "language_tsx"),
    "go": LanguageSpec("go", "tree_sitter_go"),
    "rust": LanguageSpec("rust", "tree_sitter_rust"),
    "java": LanguageSpec("java", "tree_sitter_java"),
    "c": LanguageSpec("c", "tree_sitter_c"),
    "cpp": LanguageSpec("cpp", "tree_sitter_cpp"),
}

EXTENSIONS = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".hpp": "cpp",
    ".hh": "cpp",
    ".hxx": "cpp",
}

# C and C++ headers: included by other files, their includes are their includers' too.
C_HEADER_EXTENSIONS = frozenset({".h", ".hh", ".hpp", ".hxx"})
# C and C++: files that #include each other, whose headers declare what a source file uses.
C_FAMILY = frozenset({"c", "cpp"})

# LSP language ids that differ from our names.
LANGUAGE_IDS = {"typescriptreact": "tsx", "javascriptreact": "javascript", "c++": "cpp"}


def language_for(path: str, language_id: str | None = None) -> str | None:
    if language_id:
        name = LANGUAGE_IDS.get(language_id, language_id)
        if name in SPECS:
            return name
    return EXTENSIONS.get(_suffix(path))


def is_c_header(path: str) -> bool:
    return _suffix(path) in C_HEADER_EXTENSIONS


def _suffix(path: str) -> str:
    """The path's extension, lowercased, with its dot ('' when it has none)."""
    dot = path.rfind(".")
    return path[dot:].lower() if dot != -1 else ""


_CPP_MARKERS = (b"class ", b"namespace ", b"template<", b"template <", b"public:", b"::")


def refine_language(language: str | None, path: str, data: bytes) -> str | None:
    """A ``.h`` header written in C++ (classes, namespaces, templates in its first 64 KB) is
    parsed as C++: the C grammar would lose its classes' members."""
    if language == "c" and path.lower().endswith(".h"):
        head = data[:65536]
        if any(marker in head for marker in _CPP_MARKERS):
            return "cpp"
    return language


@cache
def grammar(name: str) -> Language:
    spec = SPECS[name]
    module = importlib.import_module(spec.module)
    return Language(getattr(module, spec.function)())


def parser_for(name: str) -> Parser:
    return Parser(grammar(name))


# Files the index reads (grammars or not: a file without one gets its first lines).
SOURCE_EXTENSIONS = frozenset(
    {
        ".py",
        ".pyi",
        ".js",
        ".mjs",
        ".cjs",
        ".jsx",
        ".ts",
        ".mts",
        ".cts",
        ".tsx",
        ".go",
        ".rs",
        ".java",
        ".c",
        ".h",
        ".cc",
        ".cpp",
        ".cxx",
        ".hpp",
        ".hh",
        ".hxx",
        ".rb",
        ".php",
        ".cs",
        ".kt",
        ".kts",
        ".swift",
        ".scala",
        ".lua",
        ".sh",
        ".bash",
        ".zsh",
        ".sql",
        ".m",
        ".mm",
        ".r",
        ".jl",
        ".ex",
        ".exs",
        ".erl",
        ".hs",
        ".ml",
        ".mli",
        ".dart",
        ".zig",
        ".vue",
        ".svelte",
        ".clj",
        ".groovy",
        ".pl",
        ".pm",
        ".nim",
        ".v",
        ".proto",
        ".graphql",
    }
)
