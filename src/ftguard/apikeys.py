"""API keys come only from environment variables; servers on this machine get a dummy key."""

from __future__ import annotations

import os
from urllib.parse import urlparse

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
