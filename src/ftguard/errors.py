"""Exceptions a user can cause. The CLI prints their message and exits non-zero, never a traceback."""


class FtguardError(Exception):
    """Base class: anything a user can fix (bad config, bad data, missing model)."""


class ConfigError(FtguardError):
    """A config value is wrong: unknown key, bad type, unknown component name."""


class DataError(FtguardError):
    """Input data is malformed; the message starts with `file:line:` where one is known."""


class ModelError(FtguardError):
    """A model cannot be found or loaded."""


class JudgeError(FtguardError):
    """A judge cannot run (endpoint unreachable, missing key)."""


def validation_lines(error: object, unknown: str, top: str) -> list[str]:
    """One indented line per pydantic error: `  loc: message (got value)`, or `  loc: unknown <unknown>`."""
    lines = []
    for err in error.errors():  # type: ignore[attr-defined]
        loc = ".".join(str(x) for x in err["loc"]) or top
        if err["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            lines.append(f"  {loc}: unknown {unknown}")
        else:
            lines.append(f"  {loc}: {err['msg']} (got {err.get('input')!r})")
    return lines
