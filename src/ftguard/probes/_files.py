"""Rows of a user's evaluation file (JSONL or CSV) or of a Hugging Face dataset, checked with `file:line` errors,
for the probes built from the user's own data (chat_holdout, prompts, qa).

    rows = read_rows("redteam.csv", required=("prompt", "expected"))       # [(where, row), ...]
    rows = read_rows(hf={"path": "org/name", "split": "test", "columns": {"prompt": "text"}}, required=...)
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from ftguard.errors import ConfigError, DataError

MAX_ROWS = 100_000


def _jsonl(path: Path) -> list[tuple[str, dict[str, Any]]]:
    from ftguard.data.chat import _lines, _parse_line

    out = []
    for lineno, raw in enumerate(_lines(path), 1):
        if not raw.strip():
            continue
        where = f"{path}:{lineno}"
        row = _parse_line(raw, where)
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
        out.append((where, row))
    return out


def _csv(path: Path) -> list[tuple[str, dict[str, Any]]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            rows = []
            for row in reader:
                where = f"{path}:{reader.line_num}"
                if None in row:
                    raise DataError(f"{where}: more fields than the header has ({reader.fieldnames})")
                rows.append((where, {k: v for k, v in row.items() if k is not None}))
            return rows
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); re-save it as UTF-8") from None
    except csv.Error as e:
        raise DataError(f"{path}: not a readable CSV file ({e})") from None


def _hf(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    unknown = set(spec) - {"path", "name", "split", "columns", "revision"}
    if unknown or "path" not in spec:
        raise ConfigError(f"hf: give {{path, name?, split?, revision?, columns?}}; got {sorted(spec)}")
    try:
        import datasets

        ds = datasets.load_dataset(spec["path"], spec.get("name"), split=spec.get("split", "test"),
                                   revision=spec.get("revision"))
    except Exception as e:  # noqa: BLE001 - offline, datasets raises many kinds of errors
        raise DataError(f"Hugging Face dataset {spec['path']!r} ({spec.get('name') or 'default'}, split "
                        f"{spec.get('split', 'test')!r}) could not be loaded: the hub is unreachable from here or the "
                        f"dataset does not exist ({type(e).__name__}: {str(e)[:200]}); use a local JSONL/CSV `path` "
                        "instead") from None
    columns = spec.get("columns") or {}
    return [(f"{spec['path']}[{i}]", {**r, **{ours: r[theirs] for ours, theirs in columns.items()}})
            for i, r in enumerate(ds)]


def read_rows(path: str | None = None, hf: dict[str, Any] | None = None,
              required: tuple[str, ...] = ()) -> list[tuple[str, dict[str, Any]]]:
    """(where, row) of every row; DataError naming file:line for a missing field, an empty file, a directory."""
    if (path is None) == (hf is None):
        raise ConfigError("give the evaluation data as `path` (a JSONL or CSV file) or as `hf` (a hub dataset), "
                          "exactly one of them")
    if hf is not None:
        rows = _hf(hf)
    else:
        p = Path(path).expanduser()
        if p.is_dir():
            raise DataError(f"{p} is a directory; give a JSONL or CSV file")
        if not p.is_file():
            raise DataError(f"{p}: file not found")
        rows = _csv(p) if p.suffix.lower() == ".csv" else _jsonl(p)
    if not rows:
        raise DataError(f"{path or hf}: no rows")
    if len(rows) > MAX_ROWS:
        raise DataError(f"{path or hf}: {len(rows)} rows; at most {MAX_ROWS} per probe file")
    for where, row in rows:
        missing = [k for k in required if not isinstance(row.get(k), str) or not row[k].strip()]
        if missing:
            raise DataError(f"{where}: missing or empty field(s) {missing}; each row needs {list(required)} "
                            f"(it has {sorted(row)})")
    return rows
