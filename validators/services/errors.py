"""The refusal every validators service raises: a message and the field at fault."""

from __future__ import annotations


class ValidatorError(ValueError):
    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field
