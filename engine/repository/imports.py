"""Import statements -> indexed files, per language. Matching is by path tail, so ``src/`` layouts
and monorepo sub-packages resolve without configuration."""

from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from collections.abc import Iterable

_PY_FROM = re.compile(r"^from\s+(\.*)([\w.]*)\s+import\s+(.+)$", re.S)
_PY_IMPORT = re.compile(r"^import\s+(.+)$", re.S)
_JS_SPEC = re.compile(r"""(?:from|import|require\()\s*['"](\.{1,2}/[^'"]+)['"]""")
_GO_SPEC = re.compile(r'"([^"]+)"')
_RUST_MOD = re.compile(r"^(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;")
_RUST_USE = re.compile(r"use\s+(?:crate|super|self)::([\w:]+)")
_JAVA = re.compile(r"^import\s+(?:static\s+)?([\w.]+?)(?:\.\*)?\s*;")
_INCLUDE = re.compile(r'^#\s*include\s+"([^"]+)"')
JS_EXTENSIONS = (".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", ".d.ts")


class ImportResolver:
    def __init__(self, paths: Iterable[str]) -> None:
        self._paths = set(paths)
        self._by_tail: dict[str, list[str]] = defaultdict(list)
        self._by_dir_tail: dict[str, list[str]] = defaultdict(list)
        for path in sorted(self._paths):
            parts = path.split("/")
            for start in range(len(parts)):
                self._by_tail["/".join(parts[start:])].append(path)
            for start in range(len(parts) - 1):
                self._by_dir_tail["/".join(parts[start:-1])].append(path)

    def resolve(self, importer: str, language: str | None, statements: Iterable[str]) -> list[str]:
        found: list[str] = []
        for statement in statements:
            for candidate in self._candidates(importer, language, statement.strip()):
                if candidate not in found and candidate != importer:
                    found.append(candidate)
        return found

    def _candidates(self, importer: str, language: str | None, statement: str) -> list[str]:
        folder = posixpath.dirname(importer)
        if language == "python":
            return self._python(folder, statement)
        if language in ("javascript", "typescript", "tsx"):
            return [
                hit
                for spec in _JS_SPEC.findall(statement)
                for hit in self._first_existing(_js_paths(folder, spec))
            ]
        if language == "go":
            return [
                hit
                for spec in _GO_SPEC.findall(statement)
                for hit in self._by_dir_tail.get("/".join(spec.split("/")[-2:]), [])[:3]
            ]
        if language == "rust":
            return self._rust(importer, folder, statement)
        if language == "java":
            match = _JAVA.match(statement)
            return self._tail(match.group(1).replace(".", "/") + ".java") if match else []
        if language in ("c", "cpp"):
            match = _INCLUDE.match(statement)
            if not match:
                return []
            local = posixpath.normpath(posixpath.join(folder, match.group(1)))
            return [local] if local in self._paths else self._tail(match.group(1))
        return []

    def _python(self, folder: str, statement: str) -> list[str]:
        modules: list[tuple[str, str]] = []  # (base folder or "" for absolute, dotted)
        if match := _PY_FROM.match(statement):
            dots, module, names = match.groups()
            base = folder
            for _ in range(max(len(dots) - 1, 0)):
                base = posixpath.dirname(base)
            anchor = base if dots else ""
            modules.append((anchor, module))
            for name in re.findall(r"\w+", names.split("#")[0]):
                modules.append((anchor, f"{module}.{name}" if module else name))
        elif match := _PY_IMPORT.match(statement):
            for part in match.group(1).split(","):
                modules.append(("", part.split(" as ")[0].strip()))
        found: list[str] = []
        for anchor, dotted in modules:
            if not dotted:
                continue
            relative = dotted.replace(".", "/")
            for suffix in (".py", "/__init__.py", ".pyi"):
                if anchor:
                    path = posixpath.join(anchor, relative + suffix)
                    hits = [path] if path in self._paths else []
                else:
                    hits = self._tail(relative + suffix)
                if hits:
                    found.extend(hits[:1])
                    break
        return found

    def _rust(self, importer: str, folder: str, statement: str) -> list[str]:
        if match := _RUST_MOD.match(statement):
            name = match.group(1)
            stem = posixpath.splitext(posixpath.basename(importer))[0]
            base = folder if stem in ("mod", "lib", "main") else posixpath.join(folder, stem)
            return self._first_existing(
                [posixpath.join(base, f"{name}.rs"), posixpath.join(base, name, "mod.rs")]
            )
        if match := _RUST_USE.search(statement):
            parts = match.group(1).split("::")
            for length in range(len(parts), 0, -1):
                module = "/".join(parts[:length])
                hits = self._tail(f"src/{module}.rs") or self._tail(f"src/{module}/mod.rs")
                if hits:
                    return hits[:1]
        return []

    def _tail(self, tail: str) -> list[str]:
        hits = self._by_tail.get(tail, [])
        return sorted(hits, key=len)[:1]

    def _first_existing(self, candidates: list[str]) -> list[str]:
        return next(([c] for c in candidates if c in self._paths), [])


def _js_paths(folder: str, spec: str) -> list[str]:
    base = posixpath.normpath(posixpath.join(folder, spec))
    if base.startswith("../"):
        return []
    return [
        base,
        *(base + ext for ext in JS_EXTENSIONS),
        *(f"{base}/index{ext}" for ext in JS_EXTENSIONS),
    ]
