"""What the model sees of the repository, shared by completions and actions: the declarations
a file needs (``needed``), the append-only tier they form (``tier``), and token counts."""

from engine.definitions.repository import FileAt, Layout, RepositoryContext
from engine.definitions.tier import ContextEntry
from engine.definitions.tokens import TokenCounts

__all__ = ["ContextEntry", "FileAt", "Layout", "RepositoryContext", "TokenCounts"]
