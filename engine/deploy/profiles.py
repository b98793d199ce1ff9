"""Launch profiles: the guide's scenario table as data (``prompts/vllm/profiles.toml``), plus
any a config file adds under ``[profiles.NAME]``."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from importlib import resources

from pydantic import TypeAdapter, ValidationError

from engine.config import LaunchProfile

_PROFILES = TypeAdapter(dict[str, LaunchProfile])


class UnknownProfile(ValueError):
    pass


def builtin_profiles() -> dict[str, LaunchProfile]:
    text = resources.files("prompts").joinpath("vllm", "profiles.toml").read_text("utf-8")
    try:
        return _PROFILES.validate_python(tomllib.loads(text))
    except ValidationError as error:  # shipped data: a broken file is a bug, said plainly
        raise RuntimeError(f"prompts/vllm/profiles.toml: {error}") from error


def all_profiles(configured: Mapping[str, LaunchProfile]) -> dict[str, LaunchProfile]:
    """Built-in profiles, with the config file's added or replacing them by name."""
    return {**builtin_profiles(), **configured}


def profile_named(name: str, configured: Mapping[str, LaunchProfile]) -> LaunchProfile:
    profiles = all_profiles(configured)
    if name not in profiles:
        raise UnknownProfile(
            f"unknown profile {name!r}: choose one of {', '.join(sorted(profiles))} "
            "or add [profiles.NAME] to the config file"
        )
    profile = profiles[name]
    if profile.min_num_seqs > profile.max_num_seqs:
        raise UnknownProfile(
            f"profile {name!r}: min_num_seqs {profile.min_num_seqs} is above "
            f"max_num_seqs {profile.max_num_seqs}"
        )
    return profile
