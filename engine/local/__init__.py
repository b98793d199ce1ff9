"""A local vLLM (the CPU build) and the embedded default model it serves."""
