"""Talking to OpenAI-compatible servers (vLLM first)."""
