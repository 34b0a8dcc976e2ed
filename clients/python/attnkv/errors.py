"""attnkvd's error replies as Python exceptions.

Every error reply becomes an Error, a subclass of redis-py's ResponseError,
so code that already catches redis errors keeps working. Errors about the
text (a word not in the vocabulary, empty or oversized text, too many words)
are InvalidTextError, and an unknown word is the more precise
UnknownWordError. Failures to connect, time-outs and refused authentication
stay redis-py's own exceptions (redis.exceptions.ConnectionError and its
subclasses).

The message texts matched here are the daemon's: src/engine/embed.c (the
text checks) and src/server/cmd-keys.c (max-key-len, max-value-len).
"""

from __future__ import annotations

import re
from typing import Optional, Sequence, Tuple

import redis.exceptions

__all__ = ["Error", "InvalidTextError", "UnknownWordError"]


class Error(redis.exceptions.ResponseError):
    """An error reply from attnkvd.

    str(error) is the daemon's message, without the "ERR " that redis-py
    drops (other codes, such as "OOM ...", are kept). command holds the
    arguments of the command that was refused, e.g. ("SET", "rhombuss",
    "shape"), or None when that is not known.
    """

    def __init__(self, message: str, command: Optional[Sequence[object]] = None) -> None:
        super().__init__(message)
        self.message = message
        self.command: Optional[Tuple[object, ...]] = (
            tuple(command) if command is not None else None)


class InvalidTextError(Error):
    """The daemon refused a key, value or query text: empty, too long, not
    UTF-8, too many words, or (UnknownWordError) a word it does not know."""


class UnknownWordError(InvalidTextError):
    """A word of the text is not in the daemon's vocabulary.

    word is the word as the daemon showed it (its escapes undone; a word
    longer than 64 bytes is cut and ends in "..."); suggestion is the
    vocabulary word the daemon proposed instead, or None.
    """

    def __init__(self, message: str, command: Optional[Sequence[object]] = None) -> None:
        super().__init__(message, command)
        m = _UNKNOWN_WORD.match(message)
        self.word: Optional[str] = _unescape(m.group(1)) if m else None
        self.suggestion: Optional[str] = m.group(2) if m else None


# "unknown word 'W'" or "unknown word 'W' (did you mean 'S'?)". W is quoted
# strictly (src/util/text.c): quotes, backslashes and control bytes appear
# as \xHH, so W holds no quote. S is the vocabulary word as it is.
_UNKNOWN_WORD = re.compile(r"unknown word '([^']*)'(?: \(did you mean '(.*)'\?\))?\Z", re.S)

# The beginnings of the other messages about text.
_TEXT_ERRORS = (
    "text too long ",
    "text is not valid UTF-8",
    "too many words ",
    "empty text",
    "key is too long ",
    "value is too long ",
)

_ESCAPE = re.compile(rb"\\x([0-9a-fA-F]{2})")


def _unescape(shown: str) -> str:
    raw = _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), shown.encode("utf-8"))
    return raw.decode("utf-8", errors="replace")


def from_reply(err: redis.exceptions.ResponseError,
               command: Optional[Sequence[object]] = None) -> redis.exceptions.RedisError:
    """The exception to raise for the error reply redis-py raised as err:
    an Error (or subclass), or for a refused password redis-py's
    AuthenticationError, which redis-py 4.3 itself gives only for NOAUTH."""
    if isinstance(err, Error):
        return err
    message = str(err.args[0]) if err.args else str(err)
    if message.startswith("WRONGPASS "):
        return redis.exceptions.AuthenticationError(message)
    cls = Error
    if _UNKNOWN_WORD.match(message):
        cls = UnknownWordError
    elif message.startswith(_TEXT_ERRORS):
        cls = InvalidTextError
    return cls(message, command)
