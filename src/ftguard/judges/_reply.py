"""What of a reply every judge reads: the reply up to a fake next turn. Small models often go on to write the
user's next message ("User: thanks!") and answer it; the verdict is about the reply to the item only, and
every judge cuts it at the same place (one helper, one pattern).

    cut_at_next_turn("Paris.\\nUser: and Spain?\\nMadrid.")   # -> "Paris."
"""

from __future__ import annotations

import re

NEXT_TURN = re.compile(r"\n\s*(?:user|human|customer|client|guest|question)\s*:", re.IGNORECASE)


def cut_at_next_turn(text: str | None) -> str:
    """`text` before the first line that opens a new speaker's turn, stripped."""
    return NEXT_TURN.split(text or "", maxsplit=1)[0].strip()
