"""Content-addressed, append-only JSONL caches: a killed run keeps every finished batch, a re-run reuses it.

    cache = JsonlCache(run_dir / "cache" / "generations" / f"{model_fp}.jsonl")
    cache.get(key); cache.put_many({key: value, ...})
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def digest(*parts: Any) -> str:
    """sha256 of a JSON rendering of `parts` (dict keys sorted), 20 hex chars."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:20]


class JsonlCache:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._data: dict[str, Any] = {}
        if self.path.exists():
            with self.path.open(encoding="utf-8") as f:
                for line in f:
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:  # a line cut short by a kill: ignore it, it is recomputed
                        continue
                    self._data[row["key"]] = row["value"]

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def put_many(self, values: dict[str, Any]) -> None:
        if not values:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            for key, value in values.items():
                f.write(json.dumps({"key": key, "value": value}, ensure_ascii=False) + "\n")
            f.flush()
        self._data.update(values)
