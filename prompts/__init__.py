"""Prompt templates as data (TOML). Loaded by ``engine.completion.templating``."""
