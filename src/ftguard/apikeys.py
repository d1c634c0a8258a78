"""API keys come only from environment variables; servers on this machine get a dummy key. The one key
resolver of ftguard: endpoint subjects, the llm judge and the hosted fine-tuning services all call it."""

from __future__ import annotations

import os
from urllib.parse import urlparse

from ftguard.errors import ConfigError

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}
LOCAL_DUMMY_KEY = "sk-local-dummy"  # local servers ignore the key, but the openai client insists on one


def api_key(base_url: str | None, env_var: str) -> str | None:
    """The key in `env_var`; the dummy key for a local `base_url`; None when neither applies."""
    key = os.environ.get(env_var)
    if key:
        return key
    if base_url and urlparse(base_url).hostname in LOCAL_HOSTS:
        return LOCAL_DUMMY_KEY
    return None


def require_api_key(base_url: str | None, env_var: str, where: str) -> str:
    """`api_key`, or ConfigError saying which variable to set for `where`."""
    key = api_key(base_url, env_var)
    if key is None:
        raise ConfigError(f"{where} needs an API key: set the environment variable {env_var} "
                          "(or name another one with api_key_env)")
    return key
