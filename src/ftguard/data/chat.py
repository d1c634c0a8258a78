"""Load and validate training conversations in the OpenAI chat fine-tuning format.

One conversation per line: `{"messages": [{"role": "system" | "user" | "assistant", "content": "..."}, ...]}`.
Every problem is reported as `file:line: what is wrong ... how to fix it`.

    python -c "from ftguard.data import load_train_data; print(len(load_train_data('builtin:sgd_hotels')))"
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

from ftguard.data.builtin import load_sgd
from ftguard.data.sgd import HOTEL_SYSTEM_PROMPT, dialogue_to_messages
from ftguard.errors import DataError

ROLES = ("system", "user", "assistant")
MAX_LINE_BYTES = 4 << 20  # one conversation per line; a longer line is refused, not parsed (documented limit)
BUILTIN_TRAIN = {"builtin:sgd_hotels": "the SGD hotel dialogues, train split"}
FORMAT_HINT = 'each line must look like {"messages": [{"role": "user", "content": "..."}, ...]}'


def _check_message(msg: Any, i: int, where: str) -> dict[str, str]:
    if not isinstance(msg, dict):
        raise DataError(f"{where}: messages[{i}] must be an object with 'role' and 'content', got {msg!r:.60}")
    missing = [k for k in ("role", "content") if k not in msg]
    if missing:
        raise DataError(f"{where}: messages[{i}] has no {' or '.join(map(repr, missing))}; {FORMAT_HINT}")
    role, content = msg["role"], msg["content"]
    if role not in ROLES:
        close = difflib.get_close_matches(str(role), ROLES, n=1)
        hint = f" did you mean {close[0]!r}?" if close else ""
        raise DataError(f"{where}: messages[{i}] has unknown role {role!r};{hint} Allowed: {', '.join(ROLES)}")
    if not isinstance(content, str):
        raise DataError(
            f"{where}: messages[{i}] ({role}) content must be a string, got {type(content).__name__}; "
            "multi-part or null content is not supported"
        )
    if not content.strip():
        raise DataError(f"{where}: messages[{i}] ({role}) has empty content; remove the message or fill it in")
    bad = next((c for c in content if "\ud800" <= c <= "\udfff"), None)
    if bad is not None:
        raise DataError(f"{where}: messages[{i}] ({role}) holds an unpaired UTF-16 surrogate ({bad!r}, written as "
                        f"\\u{ord(bad):04x} in the file), which no text can contain; fix the text that produced it")
    return {"role": role, "content": content}


def validate_messages(messages: Any, where: str) -> list[dict[str, str]]:
    """Check one conversation and return it as plain `{"role", "content"}` dicts (extra keys dropped).

    Rules: an optional system message first, then user/assistant turns alternating from a user turn,
    non-empty string contents, at least one assistant turn and an assistant turn last.

    Args:
        messages: The value of the line's `messages` key.
        where: Prefix for error messages, usually `"file:line"`.

    Raises:
        DataError: with a message that starts with `where` and says how to fix the conversation.
    """
    if not isinstance(messages, list) or not messages:
        raise DataError(f"{where}: 'messages' must be a non-empty list, got {messages!r:.60}; {FORMAT_HINT}")
    checked = [_check_message(m, i, where) for i, m in enumerate(messages)]
    start = 1 if checked[0]["role"] == "system" else 0
    for i, msg in enumerate(checked[start:], start):
        if msg["role"] == "system":
            raise DataError(f"{where}: messages[{i}] is a system message; only the first message may be system")
        expected = "user" if (i - start) % 2 == 0 else "assistant"
        if msg["role"] != expected:
            raise DataError(
                f"{where}: messages[{i}] is from {msg['role']!r} but {expected!r} was expected; roles must "
                "alternate user/assistant (starting with user) after the optional system message"
            )
    if not any(m["role"] == "assistant" for m in checked):
        raise DataError(f"{where}: no assistant message, so there is nothing to learn; add the assistant's reply")
    if checked[-1]["role"] != "assistant":
        raise DataError(f"{where}: the last message is from {checked[-1]['role']!r}; end with an assistant reply")
    return checked


def _parse_line(raw: bytes, where: str) -> Any:
    try:
        line = raw.decode("utf-8-sig")  # -sig: tolerate a byte-order mark
    except UnicodeDecodeError as e:
        raise DataError(f"{where}: not valid UTF-8 ({e.reason} at byte {e.start}); re-save the file as UTF-8") from None
    try:
        return json.loads(line)
    except json.JSONDecodeError as e:
        raise DataError(f"{where}: invalid JSON: {e}; each line must hold one complete JSON object") from None
    except RecursionError:
        raise DataError(f"{where}: the JSON is nested too deeply to be a chat conversation") from None


def _lines(path: Path):  # noqa: ANN202 - a generator of raw lines, each read at most MAX_LINE_BYTES + 1 long
    with path.open("rb") as f:
        while True:
            raw = f.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while (rest := f.readline(1 << 20)) and not rest.endswith(b"\n"):
                    pass  # skip the rest of an over-long line without holding it in memory
            yield raw.rstrip(b"\r\n")


def load_chat_jsonl(path: str | Path) -> list[list[dict[str, str]]]:
    """Read a chat fine-tuning JSONL file: one `{"messages": [...]}` object per line; blank lines are skipped.

    Raises:
        DataError: the file is missing, empty or a line is malformed (`file:line:` prefix).
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path} is a directory; give a chat JSONL file (one conversation per line)")
    if not path.is_file():
        raise DataError(f"{path}: file not found; give a chat JSONL file or 'builtin:sgd_hotels'")
    conversations = []
    for lineno, raw in enumerate(_lines(path), 1):
        if not raw.strip():
            continue
        where = f"{path}:{lineno}"
        if len(raw) > MAX_LINE_BYTES:
            raise DataError(f"{where}: the line is {len(raw) / 2**20:.1f} MiB; one conversation may take at most "
                            f"{MAX_LINE_BYTES >> 20} MiB (split it, or shorten the conversation)")
        record = _parse_line(raw, where)
        if not isinstance(record, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(record).__name__}; {FORMAT_HINT}")
        if "messages" not in record:
            keys = ", ".join(map(repr, record)) or "none"
            raise DataError(f"{where}: no 'messages' key (keys: {keys}); {FORMAT_HINT}")
        conversations.append(validate_messages(record["messages"], where))
    if not conversations:
        raise DataError(f"{path}: no conversations in the file; {FORMAT_HINT}")
    return conversations


def load_train_data(spec: str, system_prompt: str | None = None) -> list[list[dict[str, str]]]:
    """Training conversations from a builtin data set or a chat JSONL file.

    Args:
        spec: `"builtin:sgd_hotels"` (SGD hotel train split, converted with backend results in context)
            or a path to a chat JSONL file.
        system_prompt: For the builtin set, replaces `HOTEL_SYSTEM_PROMPT`. For a file, becomes the system
            message of every conversation (replacing any system message it has); None keeps the file as is.

    Raises:
        DataError: unknown builtin name, or a problem in the file.
    """
    if spec.startswith("builtin:"):
        if spec not in BUILTIN_TRAIN:
            close = difflib.get_close_matches(spec, BUILTIN_TRAIN, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise DataError(f"Unknown builtin training data {spec!r}.{hint} Available: {', '.join(BUILTIN_TRAIN)}")
        prompt = system_prompt or HOTEL_SYSTEM_PROMPT
        return [dialogue_to_messages(d, prompt) for d in load_sgd("train")]
    conversations = load_chat_jsonl(spec)
    if system_prompt is None:
        return conversations
    system = {"role": "system", "content": system_prompt}
    return [[system] + [m for m in conv if m["role"] != "system"] for conv in conversations]


HOLDOUT_SALT = "ftguard-holdout"


def holdout_split(convs: list[list[dict[str, str]]], fraction: float) -> tuple[list, list]:
    """(train part, held-out part) of `convs`: a conversation is held out when a hash of its content falls under
    `fraction`, so the split depends on nothing but the data (not on the run seed or the file order), and a
    conversation that appears twice lands on one side only."""
    import hashlib

    def held(conv: list[dict[str, str]]) -> bool:
        blob = json.dumps([HOLDOUT_SALT, conv], sort_keys=True, ensure_ascii=False).encode()
        return int.from_bytes(hashlib.sha256(blob).digest()[:8], "big") / 2**64 < fraction

    train, holdout = [], []
    for conv in convs:
        (holdout if held(conv) else train).append(conv)
    return train, holdout


def load_holdout_conversations(cfg: Any) -> list[list[dict[str, str]]]:
    """The part of data.train that data.holdout_fraction holds out (empty when it is 0)."""
    if not cfg.data.holdout_fraction:
        return []
    return holdout_split(load_train_data(cfg.data.train, cfg.data.system_prompt), cfg.data.holdout_fraction)[1]


def load_train_conversations(cfg: Any) -> list[list[dict[str, str]]]:
    """The study's training conversations (`cfg.data`): loaded, checked, without the held-out part
    (data.holdout_fraction), shuffled with the run seed and cut to `data.max_examples` when it is set."""
    import random

    convs = load_train_data(cfg.data.train, cfg.data.system_prompt)
    if cfg.data.holdout_fraction:
        convs = holdout_split(convs, cfg.data.holdout_fraction)[0]
        if not convs:
            raise DataError(f"{cfg.data.train}: data.holdout_fraction={cfg.data.holdout_fraction} holds out every "
                            "conversation; lower it")
    if cfg.data.max_examples is not None:
        convs = list(convs)
        random.Random(cfg.seed).shuffle(convs)
        convs = convs[: cfg.data.max_examples]
    return convs
