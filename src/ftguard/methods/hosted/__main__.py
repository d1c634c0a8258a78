"""Cancel a hosted fine-tuning job recorded in a run folder:

    python -m ftguard.methods.hosted cancel RUN_DIR/models/openai_ft
"""

from __future__ import annotations

import sys
from pathlib import Path

from ftguard.errors import FtguardError
from ftguard.methods.hosted import cancel_job, service_for


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "cancel":
        print(__doc__, file=sys.stderr)
        return 2
    try:
        state = cancel_job(Path(argv[1]), service_for)
    except FtguardError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{state.service} job {state.job_id}: {state.raw_status or state.status}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
