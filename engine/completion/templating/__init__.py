"""Stage 2: the prompt, from templates kept as data in ``prompts/fim``."""

from engine.completion.templating.templates import FimTemplate, load_templates

__all__ = ["FimTemplate", "load_templates"]
