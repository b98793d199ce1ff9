"""What the model sees of the repository, shared by completions and actions: the declarations
a file needs (``needed``), the append-only tier they form (``tier``), and token counts."""

from engine.context.repository import FileAt, Layout, RepositoryContext
from engine.context.tier import ContextEntry
from engine.context.tokens import TokenCounts

__all__ = ["ContextEntry", "FileAt", "Layout", "RepositoryContext", "TokenCounts"]
