"""Shared fixtures: the tiny random model, an isolated cache dir, and the slow/gpu/api markers."""

from __future__ import annotations

import pytest

MARKERS = {"slow": "--runslow", "gpu": "--rungpu", "api": "--runapi"}
REASONS = {"slow": "loads the real embedded model", "gpu": "needs a CUDA device",
           "api": "needs a real OpenAI-compatible server"}


def pytest_addoption(parser: pytest.Parser) -> None:
    for flag in MARKERS.values():
        parser.addoption(flag, action="store_true", default=False)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for marker, flag in MARKERS.items():
            if marker in item.keywords and not config.getoption(flag):
                item.add_marker(pytest.mark.skip(reason=f"{REASONS[marker]}: run with {flag}"))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never write to ~/.cache; the embedded model's dequantised copy is shared across a session."""
    import os

    if "FTGUARD_CACHE" not in os.environ:
        monkeypatch.setenv("FTGUARD_CACHE", str(tmp_path_factory.getbasetemp() / "ftguard-cache"))


@pytest.fixture(scope="session")
def tiny_lm():
    from ftguard.models import tiny_model

    return tiny_model()
