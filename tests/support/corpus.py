"""Real public projects, unpacked from their registry packages (PyPI sdists, npm tarballs) and
cached between runs: the test corpus and the benchmarks' repositories.

    IQUEST_CORPUS_DIR   where they are kept (default: the user cache directory)
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import platformdirs


@dataclass(frozen=True)
class Project:
    name: str
    registry: str  # "pypi" or "npm"
    package: str
    version: str
    # The language the benchmark samples cursor positions in.
    language: str

    @property
    def folder(self) -> str:
        return f"{self.name}-{self.version}"


PROJECTS = (
    Project("rich", "pypi", "rich", "15.0.0", "python"),
    Project("click", "pypi", "click", "8.5.1", "python"),
    Project("attrs", "pypi", "attrs", "26.1.0", "python"),
    Project("flask", "pypi", "flask", "3.1.3", "python"),  # an application framework
    Project("rxjs", "npm", "rxjs", "7.8.2", "typescript"),
    Project("zod", "npm", "zod", "4.6.7", "typescript"),
    Project("trpc-server", "npm", "@trpc/server", "11.25.2", "typescript"),
)


def corpus_dir() -> Path:
    configured = os.environ.get("IQUEST_CORPUS_DIR")
    return (
        Path(configured)
        if configured
        else Path(platformdirs.user_cache_dir("iquest-lsp")) / "corpus"
    )


def project_root(project: Project, cache: Path | None = None) -> Path:
    """The unpacked project (downloaded once)."""
    cache = cache or corpus_dir()
    target = cache / project.folder
    if (target / ".complete").exists():
        return target
    url = _archive_url(project)
    with httpx.Client(timeout=120, follow_redirects=True) as client:
        response = client.get(url)
        response.raise_for_status()
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as scratch:
        with tarfile.open(fileobj=io.BytesIO(response.content), mode="r:gz") as archive:
            archive.extractall(scratch, filter="data")
        (top,) = [p for p in Path(scratch).iterdir() if p.is_dir()]
        if target.exists():
            shutil.rmtree(target)
        top.rename(target)
    (target / ".complete").write_text(url)
    return target


def _archive_url(project: Project) -> str:
    with httpx.Client(timeout=60, follow_redirects=True) as client:
        if project.registry == "pypi":
            index = f"https://pypi.org/pypi/{project.package}/json"
            data = client.get(index)
            data.raise_for_status()
            files = data.json()["releases"][project.version]
            url = next(str(f["url"]) for f in files if f["packagetype"] == "sdist")
            return str(httpx.URL(index).join(url))  # some mirrors answer relative URLs
        data = client.get(f"https://registry.npmjs.org/{project.package}/{project.version}")
        data.raise_for_status()
        return str(data.json()["dist"]["tarball"])
