"""Strict validation of the identifiers the decision point keys on.

Subjects, owners (BINs), functions, grants and digital objects are *opaque identifiers*: they are
matched for equality and never parsed, and display names never take part in a decision. Each
identifier must match a strict ASCII pattern, checked with :func:`re.fullmatch` (so a trailing
newline, which ``$`` alone would let through, is refused). The patterns are the ones of the resource
models (``tksh.resources``), not redefined here, except the Kubernetes namespace (a DNS-1123 label),
which the models do not carry as a field.

Why so strict: a policy store that concatenates identifiers into text (Casbin's CSV files) lets a
subject named ``mallory, admin, org1`` become an admin, and a ``)`` abort a load. Identifiers that
can hold none of ``,``, quotes, parentheses, spaces, newlines or non-ASCII letters cannot be
re-interpreted by any store, and the decision point never writes user data to a CSV anyway.

Every failure raises :class:`IdentifierError` naming the field and the rule, never echoing the
value (it may be personal data, e.g. an IIN pasted where an opaque id belongs).
"""

from __future__ import annotations

import re
from typing import Final

from tksh.resources.accessgrant import SUBJECT_ID_PATTERN
from tksh.resources.common import BIN_PATTERN, DNS_SUBDOMAIN_PATTERN

__all__ = [
    "ACTIONS",
    "ANONYMOUS",
    "CATEGORIES",
    "IdentifierError",
    "validate_action",
    "validate_bin",
    "validate_category",
    "validate_digital_object_id",
    "validate_function_name",
    "validate_grant_id",
    "validate_namespace",
    "validate_object_name",
    "validate_subject_id",
]

ANONYMOUS: Final = "@anonymous"
"""The principal of the open part (§21): whoever asks without registration. It deliberately does not
match the subject-id pattern, so no grant can ever be issued to it and no subject can pose as it."""

ACTIONS: Final = frozenset({"read", "write", "sign"})
"""The actions a function may carry over a category (``tksh.resources.subjectfunction.Action``)."""
CATEGORIES: Final = frozenset(range(1, 16))
"""The §4 information categories, 1 to 15."""

NAMESPACE_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
"""A Kubernetes namespace: a DNS-1123 label, at most 63 characters."""

_SUBJECT = re.compile(SUBJECT_ID_PATTERN)
_BIN = re.compile(BIN_PATTERN)
_NAME = re.compile(DNS_SUBDOMAIN_PATTERN)
_NAMESPACE = re.compile(NAMESPACE_PATTERN)
_TWELVE_DIGITS = re.compile(r"[0-9]{12}")
_NAME_MAX = 253


class IdentifierError(ValueError):
    """An identifier breaks its rule. ``field`` names where it came from, ``rule`` says what is expected."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


def _text(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise IdentifierError(field, f"must be a string, not {type(value).__name__}")
    return value


def validate_subject_id(value: object, field: str = "subject.id") -> str:
    """An opaque subject id (the JWT ``sub``): 1-63 of ``a-z 0-9 . _ : -``, starting and ending with a letter
    or digit. Twelve digits alone are refused: that is an IIN/BIN, personal data that must not be a key."""
    text = _text(value, field)
    if not _SUBJECT.fullmatch(text):
        raise IdentifierError(
            field,
            "must be an opaque id of 1-63 characters from a-z, 0-9, '.', '_', ':', '-', "
            f"starting and ending with a letter or digit (pattern {SUBJECT_ID_PATTERN})",
        )
    if _TWELVE_DIGITS.fullmatch(text):
        raise IdentifierError(field, "must be an opaque id, not an IIN/BIN (twelve digits are personal data, §9)")
    return text


def validate_bin(value: object, field: str = "onBehalfOf.bin") -> str:
    """A BIN: exactly 12 ASCII digits."""
    text = _text(value, field)
    if not _BIN.fullmatch(text):
        raise IdentifierError(field, f"must be a BIN of exactly 12 digits 0-9 (pattern {BIN_PATTERN})")
    return text


def validate_object_name(value: object, field: str = "metadata.name") -> str:
    """A Kubernetes object name: a DNS-1123 subdomain, at most 253 characters."""
    text = _text(value, field)
    if len(text) > _NAME_MAX or not _NAME.fullmatch(text):
        raise IdentifierError(
            field,
            "must be a Kubernetes object name: lower-case a-z, 0-9, '-' and '.', starting and ending with a "
            f"letter or digit, at most {_NAME_MAX} characters (DNS-1123 subdomain)",
        )
    return text


def validate_function_name(value: object, field: str = "functions[]") -> str:
    """A ``SubjectFunction`` name (cluster-scoped object name)."""
    return validate_object_name(value, field)


def validate_namespace(value: object, field: str = "metadata.namespace") -> str:
    """A Kubernetes namespace: a DNS-1123 label."""
    text = _text(value, field)
    if not _NAMESPACE.fullmatch(text):
        raise IdentifierError(
            field,
            "must be a namespace name: lower-case a-z, 0-9 and '-', starting and ending with a letter or digit, "
            "at most 63 characters (DNS-1123 label)",
        )
    return text


def _namespaced(value: object, field: str) -> str:
    text = _text(value, field)
    namespace, slash, name = text.partition("/")
    if not slash:
        raise IdentifierError(field, "must be 'namespace/name'")
    validate_namespace(namespace, field + " (namespace)")
    validate_object_name(name, field + " (name)")
    return text


def validate_grant_id(value: object, field: str = "grant") -> str:
    """An ``AccessGrant`` id: ``namespace/name``."""
    return _namespaced(value, field)


def validate_digital_object_id(value: object, field: str = "digitalObject") -> str:
    """A ``DigitalObject`` id: ``namespace/name``."""
    return _namespaced(value, field)


def validate_category(value: object, field: str = "category") -> int:
    """A §4 information category: an integer from 1 to 15 (``bool`` is not an integer here)."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in CATEGORIES:
        raise IdentifierError(field, "must be a §4 information category, an integer from 1 to 15")
    return value


def validate_action(value: object, field: str = "action") -> str:
    """An action: ``read``, ``write`` or ``sign``."""
    if not isinstance(value, str) or value not in ACTIONS:
        raise IdentifierError(field, "must be one of read, write, sign")
    return value
