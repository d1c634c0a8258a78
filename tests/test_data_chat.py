"""Chat JSONL validation: every error names file:line and the problem; valid files load."""

from __future__ import annotations

import json

import pytest

from ftguard.data import (
    HOTEL_SYSTEM_PROMPT,
    load_chat_jsonl,
    load_train_data,
    validate_messages,
)
from ftguard.errors import DataError

U = {"role": "user", "content": "Find me a hotel in Paris."}
A = {"role": "assistant", "content": "Which dates?"}
S = {"role": "system", "content": "You book hotels."}
GOOD = json.dumps({"messages": [S, U, A]})


def line(messages) -> str:
    return json.dumps({"messages": messages})


# (second line of the file, expected fragment of the error); the first line is always valid.
BAD_LINES = [
    ("{not json", "invalid JSON"),
    ("[1, 2]", "expected a JSON object, got list"),
    (json.dumps({"msgs": [U, A]}), "no 'messages' key"),
    (json.dumps({"messages": "hi"}), "'messages' must be a non-empty list"),
    (json.dumps({"messages": []}), "'messages' must be a non-empty list"),
    (line(["hello", A]), "messages[0] must be an object"),
    (line([{"content": "hi"}, A]), "messages[0] has no 'role'"),
    (line([{"role": "user"}, A]), "messages[0] has no 'content'"),
    (line([{"role": "user", "content": ["a", "b"]}, A]), "content must be a string, got list"),
    (line([{"role": "user", "content": None}, A]), "content must be a string, got NoneType"),
    (line([U, {"role": "asistant", "content": "ok"}]), "did you mean 'assistant'"),
    (line([{"role": "bot", "content": "x"}, A]), "unknown role 'bot'"),
    (line([U, A, S, U, A]), "messages[2] is a system message; only the first message may be system"),
    (line([U, U, A]), "messages[1] is from 'user' but 'assistant' was expected"),
    (line([S, A]), "messages[1] is from 'assistant' but 'user' was expected"),
    (line([U, {"role": "assistant", "content": "   \n"}]), "messages[1] (assistant) has empty content"),
    (line([S, U]), "no assistant message, so there is nothing to learn"),
    (line([U, A, U]), "the last message is from 'user'"),
]


@pytest.mark.parametrize("bad, expected", BAD_LINES, ids=[e for _, e in BAD_LINES])
def test_bad_line_names_file_line_and_problem(tmp_path, bad, expected):
    path = tmp_path / "train.jsonl"
    path.write_text(GOOD + "\n" + bad + "\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_chat_jsonl(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}:2: "), msg
    assert expected in msg


def test_line_numbers_count_blank_lines(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(GOOD + "\n\n   \n" + line([U, U]) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"train\.jsonl:4: "):
        load_chat_jsonl(path)


def test_not_utf8_gives_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(GOOD.encode() + b"\n" + line([U, A]).replace("Paris", "Par\xeds").encode("latin-1") + b"\n")
    with pytest.raises(DataError, match=r"latin1\.jsonl:2: not valid UTF-8"):
        load_chat_jsonl(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.jsonl: file not found"):
        load_chat_jsonl(tmp_path / "nope.jsonl")


def test_empty_file_names_file(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"empty\.jsonl: no conversations"):
        load_chat_jsonl(path)


def test_valid_file_loads_and_drops_extra_keys(tmp_path):
    path = tmp_path / "ok.jsonl"
    weighted = dict(A, weight=1)
    path.write_text("\ufeff" + GOOD + "\n\n" + line([U, weighted, U, A]) + "\n", encoding="utf-8")
    convs = load_chat_jsonl(path)
    assert convs == [[S, U, A], [U, A, U, A]]


def test_validate_messages_uses_where_prefix():
    with pytest.raises(DataError, match=r"^here:7: "):
        validate_messages([U], "here:7")
    assert validate_messages([U, A], "x") == [U, A]


def test_load_train_data_builtin_and_file(tmp_path):
    convs = load_train_data("builtin:sgd_hotels")
    assert len(convs) == 457
    assert convs[0][0] == {"role": "system", "content": HOTEL_SYSTEM_PROMPT}
    assert load_train_data("builtin:sgd_hotels", "Be brief.")[0][0]["content"] == "Be brief."
    path = tmp_path / "ok.jsonl"
    path.write_text(GOOD + "\n" + line([U, A]) + "\n", encoding="utf-8")
    assert load_train_data(str(path)) == [[S, U, A], [U, A]]
    new = {"role": "system", "content": "New."}
    assert load_train_data(str(path), "New.") == [[new, U, A], [new, U, A]]


def test_unknown_builtin_suggests():
    with pytest.raises(DataError, match="Did you mean 'builtin:sgd_hotels'"):
        load_train_data("builtin:sgd_hotel")
