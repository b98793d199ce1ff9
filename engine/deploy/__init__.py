"""Launching vLLM the way the deployment guide says: a model's shape, the GPUs, a profile of
the workload -> the server's numbers, its command line and the daemon settings for it."""
