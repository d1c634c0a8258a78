"""The record of how well each judge agrees with careful human reading, per probe
(assets/calibration/agreement.json, written by `ftguard judge-check --save`).

A run copies the records of the judges it uses into its manifest when it happens (`records_for`), so the
report of an old run shows the calibration that held when it ran, even after a judge is re-measured.

    {judge: {probe: {"version", "n", "kappa", "accuracy", "labels", "date", ...}}}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import ftguard

CALIBRATION_DIR = Path(ftguard.__file__).parent / "assets" / "calibration"
AGREEMENT_FILE = CALIBRATION_DIR / "agreement.json"


def part_of(item_id: str) -> str:
    """Which side of the fixed item split an item's labelled replies go to: "calibration" (judge-check measures on
    them) when sha1("calibration/" + item id) is even, else "train" (learnt judges train on them), whatever run
    or model the reply comes from."""
    return "calibration" if hashlib.sha1(f"calibration/{item_id}".encode()).digest()[0] % 2 == 0 else "train"
RELIABLE_KAPPA = 0.6  # below this on its calibration set, a probe's primary judge does not measure the axis reliably
KEEP = ("judge", "probe", "version", "labels", "category", "n", "errors", "accuracy", "kappa", "accuracy_multi",
        "kappa_multi", "date")


def known(path: Path = AGREEMENT_FILE) -> dict[str, dict[str, dict[str, Any]]]:
    """judge -> probe -> its recorded agreement (empty when none was saved)."""
    return json.loads(path.read_text()) if path.exists() else {}


def records_for(pairs: Iterable[tuple[str, str]], path: Path = AGREEMENT_FILE) -> dict[str, dict[str, Any]]:
    """probe -> judge -> record, for the (probe, judge) pairs a run uses (pairs never measured are left out)."""
    data = known(path)
    out: dict[str, dict[str, Any]] = {}
    for probe, judge in pairs:
        rec = data.get(judge.split(":")[0], {}).get(probe)
        if rec is not None:
            out.setdefault(probe, {})[judge] = rec
    return out


def save(res: dict[str, Any], path: Path = AGREEMENT_FILE) -> None:
    """Record one judge's measured agreement on one probe."""
    data = known(path)
    rec = {k: res[k] for k in KEEP if k in res}
    rec["labels"] = Path(res["labels"]).name
    data.setdefault(res["judge"], {})[res["probe"]] = rec
    path.write_text(json.dumps({j: dict(sorted(v.items())) for j, v in sorted(data.items())}, indent=2) + "\n")
