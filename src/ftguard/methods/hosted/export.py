"""Export training conversations to chat fine-tuning JSONL and check the file against a service's format rules
before anything is uploaded; count its tokens for the cost estimate.

    path = export_chat_jsonl(conversations, run_dir / "models" / "openai_ft" / "train.jsonl")
    report = check_chat_file(path, OPENAI_RULES)     # DataError listing every `file:line: problem`
    print(report.n_examples, report.tokens, report.token_method)

The rules follow OpenAI's documented chat fine-tuning format (and its data-preparation cookbook): one
`{"messages": [...]}` object per line; known roles and message keys; string, non-empty content (an assistant
message with tool calls may have none); `weight` 0 or 1 on assistant messages only; at least one trained
assistant message, and (ftguard's rule: the last turn is what is learned) an assistant message last; every
example within the model's training context; at least the minimum number of examples; a file size limit.

Token counts use tiktoken's o200k_base encoding (the gpt-4o family's) when tiktoken is installed and its
encoding file is available; tiktoken downloads that file on first use, so offline the count falls back to an
estimate of ceil(characters / 4) per message plus OpenAI's per-message overhead (3 tokens, and 3 per example).
The report says which was used.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftguard.errors import DataError

Messages = list[dict[str, Any]]
TokenCounter = Callable[[Messages], int]
MAX_ERRORS_SHOWN = 20


@dataclass(frozen=True)
class FormatRules:
    """What a service accepts in a chat fine-tuning file."""

    service: str
    roles: tuple[str, ...] = ("system", "user", "assistant", "tool", "function")
    message_keys: tuple[str, ...] = ("role", "content", "name", "weight", "function_call", "tool_calls",
                                     "tool_call_id")
    line_keys: tuple[str, ...] = ("messages", "tools", "functions", "parallel_tool_calls")
    min_examples: int = 1
    max_tokens_per_example: int | None = None
    max_file_bytes: int | None = None


# OpenAI: at least 10 examples; 512 MB per uploaded file; the per-example limit is the model's training
# context (65,536 tokens for gpt-4o-mini-2024-07-18 and the gpt-4.1 family; 16,385 for gpt-3.5-turbo-0125).
OPENAI_RULES = FormatRules("OpenAI", min_examples=10, max_tokens_per_example=65_536, max_file_bytes=512 * 2**20)
# Together AI: conversational format with these roles; files up to 50 GB; sequences beyond the model's
# max_seq_length are truncated by the service, so no per-example limit unless the method sets one.
TOGETHER_RULES = FormatRules("Together AI", roles=("system", "user", "assistant", "tool"),
                             line_keys=("messages", "tools"), min_examples=1, max_file_bytes=50 * 2**30)


@dataclass
class FileReport:
    """A checked training file: examples, tokens per example, and how tokens were counted."""

    path: Path
    n_examples: int
    tokens: list[int] = field(default_factory=list)
    token_method: str = ""

    @property
    def total_tokens(self) -> int:
        return sum(self.tokens)


def export_chat_jsonl(conversations: list[Messages], path: Path) -> Path:
    """Write `{"messages": [...]}` per line (UTF-8, atomically); returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False, suffix=".tmp") as f:
        for conv in conversations:
            f.write(json.dumps({"messages": [{"role": m["role"], "content": m["content"]} for m in conv]},
                               ensure_ascii=False) + "\n")
    os.replace(f.name, path)
    return path


def _estimate(messages: Messages) -> int:
    return 3 + sum(3 + math.ceil(len(str(m.get("content") or "")) / 4) for m in messages)


def token_counter() -> tuple[TokenCounter, str]:
    """(count(messages) -> tokens, description of the method)."""
    try:
        import tiktoken

        enc = tiktoken.get_encoding("o200k_base")  # needs the encoding file: cached, or downloadable
    except Exception:  # not installed, or offline without the cached encoding file
        return _estimate, "estimate: ceil(characters / 4) + 3 per message + 3 per example (tiktoken unavailable)"

    def count(messages: Messages) -> int:
        return 3 + sum(3 + len(enc.encode(str(m.get("content") or ""))) for m in messages)

    return count, "tiktoken o200k_base + 3 per message + 3 per example"


def _message_problems(msg: Any, i: int, rules: FormatRules) -> list[str]:
    if not isinstance(msg, dict):
        return [f"messages[{i}] must be an object with 'role' and 'content', got {type(msg).__name__}"]
    problems = []
    unknown = [k for k in msg if k not in rules.message_keys]
    if unknown:
        problems.append(f"messages[{i}] has unknown key(s) {unknown}; {rules.service} accepts "
                        f"{', '.join(rules.message_keys)}")
    role = msg.get("role")
    if role not in rules.roles:
        problems.append(f"messages[{i}] has role {role!r}; {rules.service} accepts {', '.join(rules.roles)}")
    content = msg.get("content")
    calls = role == "assistant" and (msg.get("tool_calls") or msg.get("function_call"))
    if not calls and (not isinstance(content, str) or not content.strip()):
        what = "no content" if content is None else ("empty content" if isinstance(content, str) else
                                                      f"content of type {type(content).__name__}")
        problems.append(f"messages[{i}] ({role}) has {what}; every message needs non-empty text")
    if "weight" in msg and (msg["weight"] not in (0, 1) or role != "assistant"):
        problems.append(f"messages[{i}] has weight {msg['weight']!r}; weight must be 0 or 1, on assistant "
                        "messages only")
    return problems


def _example_problems(record: Any, rules: FormatRules) -> list[str]:
    if not isinstance(record, dict):
        return [f"expected a JSON object, got {type(record).__name__}"]
    unknown = [k for k in record if k not in rules.line_keys]
    problems = [f"unknown key(s) {unknown}; a line holds {', '.join(rules.line_keys)}"] if unknown else []
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        return problems + ["'messages' must be a non-empty list of {\"role\", \"content\"} objects"]
    for i, msg in enumerate(messages):
        problems += _message_problems(msg, i, rules)
    dicts = [m for m in messages if isinstance(m, dict)]
    if not any(m.get("role") == "assistant" and m.get("weight", 1) != 0 for m in dicts):
        problems.append("no assistant message to train on; add the assistant's reply")
    elif not isinstance(messages[-1], dict) or messages[-1].get("role") != "assistant":
        last = messages[-1].get("role") if isinstance(messages[-1], dict) else None
        problems.append(f"the last message is from {last!r}; end each example with an assistant reply")
    return problems


def check_chat_file(path: Path, rules: FormatRules, count: TokenCounter | None = None,
                    token_method: str = "") -> FileReport:
    """Check every line of a chat fine-tuning file against `rules`; count tokens per example.

    Raises:
        DataError: listing every problem as `file:line: problem` (the first 20, then how many more).
    """
    if count is None:
        count, token_method = token_counter()
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: training file not found")
    errors: list[str] = []
    size = path.stat().st_size
    if rules.max_file_bytes is not None and size > rules.max_file_bytes:
        errors.append(f"{path}: {size:,} bytes is over {rules.service}'s limit of {rules.max_file_bytes:,} bytes "
                      "per file; use fewer examples (data.max_examples)")
    tokens: list[int] = []
    lines = path.read_bytes().splitlines()
    for lineno, raw in enumerate(lines, 1):
        where = f"{path}:{lineno}"
        if not raw.strip():
            errors.append(f"{where}: empty line; every line must hold one example")
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as e:
            errors.append(f"{where}: not valid UTF-8 ({e.reason} at byte {e.start})")
            continue
        except json.JSONDecodeError as e:
            errors.append(f"{where}: invalid JSON ({e.msg} at column {e.colno}); one JSON object per line")
            continue
        problems = _example_problems(record, rules)
        errors += [f"{where}: {p}" for p in problems]
        if problems:
            continue
        n = count(record["messages"])
        tokens.append(n)
        if rules.max_tokens_per_example is not None and n > rules.max_tokens_per_example:
            errors.append(f"{where}: {n:,} tokens, over the {rules.max_tokens_per_example:,}-token limit per "
                          "training example; shorten or split the conversation")
    n_lines = sum(1 for raw in lines if raw.strip())
    if n_lines < rules.min_examples:
        errors.append(f"{path}: {n_lines} example(s); {rules.service} needs at least {rules.min_examples} "
                      "(raise data.max_examples or add data)")
    if errors:
        more = f"\n  ... and {len(errors) - MAX_ERRORS_SHOWN} more" if len(errors) > MAX_ERRORS_SHOWN else ""
        raise DataError(f"{len(errors)} problem(s) in the {rules.service} fine-tuning file:\n  "
                        + "\n  ".join(errors[:MAX_ERRORS_SHOWN]) + more)
    return FileReport(path, len(tokens), tokens, token_method)
