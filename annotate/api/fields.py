"""Serializer fields shared by the API apps."""

from __future__ import annotations

from rest_framework import serializers

from annotate.untrusted_text import unstorable_text_problem


class StorableSlugRelatedField(serializers.SlugRelatedField):
    """A slug lookup that refuses what storage cannot hold before it reaches the database:
    PostgreSQL answers a NUL in a query parameter with a DataError (a 500)."""

    def to_internal_value(self, data):
        if isinstance(data, str) and (problem := unstorable_text_problem(data)):
            raise serializers.ValidationError(problem)
        return super().to_internal_value(data)
