"""The assistant's engine: documents in, suggestions out. Knows nothing of LSP."""

__version__ = "0.1.0"
