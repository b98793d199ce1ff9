"""The protocol layer: pygls server, CLI, demo. Thin: converts LSP to engine calls and back."""
