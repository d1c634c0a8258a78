"""A real OpenAI-compatible server for the `api` tests: llama-cpp-python serving the embedded GGUF model.

$FTGUARD_LLAMACPP_URL points the tests at a server that is already running; otherwise one is started on a
free 127.0.0.1 port (needs `pip install 'llama-cpp-python[server]'`, see `make test-api`) and stopped after.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager


def served_model(url: str) -> str:
    with urllib.request.urlopen(url.rstrip("/") + "/models", timeout=10) as r:
        return json.load(r)["data"][0]["id"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def llamacpp_server(timeout_s: float = 180) -> Iterator[tuple[str, str]]:
    """(base URL ending in /v1, served model name)."""
    url = os.environ.get("FTGUARD_LLAMACPP_URL")
    if url:
        yield url, os.environ.get("FTGUARD_LLAMACPP_MODEL") or served_model(url)
        return
    import importlib.util

    import pytest

    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed: pip install 'llama-cpp-python[server]' (make test-api)")
    from ftguard.models.loading import embedded_gguf

    gguf = embedded_gguf("smollm2-135m-instruct")
    port = _free_port()
    log = tempfile.TemporaryFile("w+")  # not a pipe: llama.cpp logs a lot, and a full pipe would block it
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
                             "--port", str(port), "--n_ctx", "2048", "--model_alias", "smollm2"],
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + timeout_s
        name = None
        while name is None:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"llama.cpp server exited with {proc.returncode}: {log.read()[-2000:]}")
            try:
                name = served_model(url)
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"llama.cpp server did not answer on {url} within {timeout_s} s") from None
                time.sleep(0.5)
        yield url, name
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
