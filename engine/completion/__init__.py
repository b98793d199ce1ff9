"""Inline completion, as named stages: context -> templating -> generation -> postprocessing.

``pipeline.CompletionService`` runs them; each stage is a folder with pure, separately tested code.
"""
