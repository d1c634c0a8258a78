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
