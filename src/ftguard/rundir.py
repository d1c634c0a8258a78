"""The run folder's guard rails: what may be used as `output_dir`, one run at a time per folder, and the
finished run's files replaced only by a run that finishes.

    with claim_run_dir(cfg.output_dir):       # ConfigError if the folder is not ours or is in use
        ...                                   # progress goes to manifest.inprogress.json
        finish_run(out, config_text, manifest)   # config.yaml + manifest.json replaced atomically, at the end

- `output_dir` must be new, empty, or a run folder (it holds RUN_MARKER, or a manifest.json / config.yaml
  of an older ftguard); any other folder is refused, so `output_dir: ../..` cannot overwrite a project.
- An exclusive lock (`.ftguard.lock`, fcntl) held for the whole run: a second run on the same folder stops
  at once naming the first one's pid, instead of interleaving with it.
- While a run goes on, its manifest is written to `manifest.inprogress.json`; config.yaml and manifest.json
  of a finished run are only replaced when the new run finishes, so a failed or killed re-run leaves the
  finished run's report intact.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ftguard.errors import ConfigError
from ftguard.results import CONFIG_FILE, MANIFEST_FILE, write_json, write_text

RUN_MARKER = ".ftguard-run"
LOCK_FILE = ".ftguard.lock"
PROGRESS_FILE = "manifest.inprogress.json"


def is_run_dir(path: Path) -> bool:
    return any((path / name).exists() for name in (RUN_MARKER, MANIFEST_FILE, CONFIG_FILE, PROGRESS_FILE))


def check_output_dir(path: Path) -> None:
    """ConfigError unless `path` is new, an empty folder, or an ftguard run folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"output_dir {path} is a file; give a run folder, or an empty or new one")
    if path.is_dir() and any(path.iterdir()) and not is_run_dir(path):
        raise ConfigError(f"output_dir {path} is a folder that holds other files and no ftguard run "
                          f"({RUN_MARKER} is missing); ftguard will not write into it: give a new or empty folder")


@contextlib.contextmanager
def claim_run_dir(path: Path) -> Iterator[Path]:
    """Check, mark and lock `path` for one run; the lock is released when the block ends (or the process dies)."""
    import fcntl

    path = Path(path)
    check_output_dir(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / RUN_MARKER).touch()
    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise ConfigError(f"{path} is in use by another ftguard run (pid {holder}); wait for it to finish "
                              "or give another output_dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def write_progress(path: Path, manifest: dict[str, Any]) -> None:
    write_json(Path(path) / PROGRESS_FILE, manifest)


def finish_run(path: Path, config_text: str, manifest: dict[str, Any]) -> None:
    """Replace config.yaml and manifest.json (each atomically) and drop the progress file."""
    path = Path(path)
    write_text(path / CONFIG_FILE, config_text)
    write_json(path / MANIFEST_FILE, manifest)
    with contextlib.suppress(FileNotFoundError):
        (path / PROGRESS_FILE).unlink()


def read_json_or_none(path: Path) -> dict[str, Any] | None:
    """A JSON object from `path`, or None when it is missing, torn by a kill, or not an object."""
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None
