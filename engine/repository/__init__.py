"""The repository index: compact headers of the workspace's files, kept current and persisted."""
