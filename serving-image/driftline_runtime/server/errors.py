"""The one error type the request path raises on purpose: an HTTP status and a message naming the problem."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A client-visible failure, rendered as {"error": message} with `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def describe(value: Any) -> str:
    """A short, safe rendering of an offending JSON value for an error message."""
    kind = {
        type(None): "null",
        bool: "a boolean",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value))
    if kind is None:
        return repr(value)[:40]
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    return kind
