"""Structured JSON logging for tksh, with personal data masked before anything is written.

§9 of the Rules: IIN/BIN, names, e-mail addresses and phone numbers never reach a log in clear.
Every line, ours (structlog) and third-party (kopf, aiohttp, aiosmtpd via stdlib ``logging``),
goes through one :class:`structlog.stdlib.ProcessorFormatter` whose chain ends with
:func:`mask_pii` just before the renderer, so nothing bypasses the masking.

Masked form: ``<kind:h>`` where ``kind`` is ``bin``/``iin``/``email``/``phone``/``name`` and ``h``
is the first 8 hex digits of a keyed BLAKE2b of the *normalised* value (digits only for numbers,
``8 7xx`` phone numbers as ``7 7xx``, lower-case e-mails, case-folded names). The same value
gives the same token in every line and format, so incidents can still be correlated; without
the key the token reveals nothing. The key is ``TKSH_LOG_MASK_KEY`` (set the same secret on
every replica so their tokens agree) or random per process.

What is detected in free text (identifiers, e-mails, phones; names only under known keys):

* a standalone run of exactly 12 digits, valid checksum or not: not glued to an ASCII letter or
  digit (hex digests, base64, ``123456789012ns``), not a decimal fraction (``0.123456789012``,
  ``…:56.123456789012``) and not a UUID's last group. ``ИИН900101300123``, ``/owners/900101300123``,
  ``scan_900101300123.pdf``, ``owner-900101300123`` and CSV cells are masked; so is any unrelated
  12-digit number (a 12-digit resourceVersion in free text, ``job-202406101234``): the price of never
  leaking an identifier. Values under ``resourceVersion``/``generation`` keys are never masked;
* 12 digits grouped 4-4-4 or 6-6 with spaces or dashes, only if they pass the IIN/BIN checksum
  and have a month in digits 3-4 (otherwise port lists like ``8080 8443 9090`` would be masked);
* e-mail addresses (Unicode letters allowed; the domain needs a dot and a non-digit TLD, so
  ``image@sha256:…`` and ``pkg@1.2.3`` stay);
* phones: ``+7`` and 10 digits, any other ``+`` E.164 number (8-15 digits) with spaces,
  dashes or parentheses; national ``8 (3xx-9xx) …`` and ``7 7xx …`` with 10 digits after the prefix.

Under a personal-data key (``name``, ``email``, ``iin``... case-insensitive, ``_``/``-`` ignored)
the whole value is replaced, at any depth; ``name`` inside ``metadata``/``k8s_ref``/
``involvedObject``/``ownerReferences`` is a Kubernetes object name and stays. Elsewhere bind a
Kubernetes object's name as ``obj``/``object``, not ``name``, or it is masked as a person's name.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import logging
import os
import re
import sys
import uuid
from collections.abc import Mapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = [
    "configure_logging",
    "get_logger",
    "mask_pii",
    "mask_text",
    "mask_value",
    "masked_email",
    "set_mask_key",
]

_ENV_KEY = "TKSH_LOG_MASK_KEY"
_MASK_KEY: bytes = b""

# Key -> kind of token; keys are compared lower-cased with "_" and "-" removed.
_PII_KEYS: dict[str, str] = {
    **dict.fromkeys(
        ["name", "fullname", "ownername", "subjectname", "firstname", "lastname", "middlename", "patronymic",
         "fio", "owner"], "name"),
    **dict.fromkeys(["email", "emailaddress", "recipient", "recipients"], "email"),
    **dict.fromkeys(["phone", "phonenumber", "mobile"], "phone"),
    "bin": "bin",
    "iin": "iin",
}
# Containers whose "name" is a Kubernetes object name, not a person's.
_K8S_REF_PARENTS = frozenset({"metadata", "k8sref", "involvedobject", "ownerreferences", "regarding", "related"})
# Bookkeeping values that are never personal data even when they look like 12 digits.
_NEVER_PII = frozenset({"resourceversion", "generation", "observedgeneration"})
# Keys of the log record itself that structlog fills in: skipped for speed.
_STRUCTURAL = frozenset({"timestamp", "level", "logger"})
# ProcessorFormatter internals and exc_info (formatted first, see mask_pii): passed through untouched.
_INTERNAL = frozenset({"_record", "_from_structlog", "exc_info"})
_SAFE_TYPES = (float, bool, type(None), _dt.date, _dt.time, _dt.timedelta, uuid.UUID)

_LOCAL = r"[\w!#$%&'*+/=?^`{|}~.\-]"
_EMAIL = rf"(?<!{_LOCAL}){_LOCAL}+@(?:[\w\-]+\.)+[^\W\d_][\w\-]*"
_EMAIL_RE = re.compile(_EMAIL)
# Numbers. Every branch starts with the character it needs (``+``, ``7``/``8``, a digit) and checks
# what precedes it with a look-behind only then: the engine skips other positions quickly.
_D = r"[ \-]?\(?\d\)?"  # one phone digit, optionally after a separator / inside parentheses
_REST3 = r"[ \-]?\d{3}[ \-]?\d{2}[ \-]?\d{2}"
_REST4 = r"[ \-]?\d{2}[ \-]?\d{2}[ \-]?\d{2}"
_NUMBER_RE = re.compile(
    # +7 and exactly 10 digits; any other E.164 number: 8 to 15 digits
    rf"(?P<phone>\+(?<![\w+]\+)[ ]?(?:7(?:{_D}){{10}}|[1-9](?:{_D}){{7,14}})(?!\d)"
    # national: 8 (3xx-9xx) or 7 7xx, then 7 digits; the area code may have 4 digits
    rf"|[78](?<![\w+.\-/][78])(?:(?<=8)[ \-]?\(?[3-9]\d\d|(?<=7)[ \-]?\(?7\d\d)(?:\)?{_REST3}|\d\)?{_REST4})"
    r"(?![0-9A-Za-z_]))"
    # 12 digits: not glued to ASCII alphanumerics, not a decimal fraction, not a UUID's last group
    r"|(?P<bin>\d(?<![0-9A-Za-z]\d)(?<!\d\.\d)(?<![0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-\d)\d{11}(?![0-9A-Za-z]|\.\d))"
    # 4-4-4 / 6-6 groups (kept only with an IIN/BIN checksum, see _replace_number)
    r"|(?P<grouped>\d(?<![0-9A-Za-z.\-]\d)(?<!\d \d)(?:\d{3}(?P<sep>[ \-])\d{4}(?P=sep)\d{4}|\d{5}[ \-]\d{6})"
    r"(?![0-9A-Za-z]|[ .,\-]\d|-[0-9A-Za-z]))"
)
_HAS_DIGIT = re.compile(r"\d")
_TOKEN_RE = re.compile(r"<(?:bin|iin|email|phone|name):[0-9a-f]{8}>")
_NON_DIGITS = re.compile(r"\D")


def set_mask_key(key: str | bytes | None = None) -> None:
    """Set the masking key; ``None`` re-reads ``TKSH_LOG_MASK_KEY`` or draws a random one.

    Tokens depend on the key: replicas share correlation only if they share the key.
    """
    global _MASK_KEY
    if key is None:
        key = os.environ.get(_ENV_KEY) or os.urandom(32)
    raw = key.encode("utf-8") if isinstance(key, str) else key
    _MASK_KEY = raw if len(raw) <= 64 else hashlib.blake2b(raw).digest()  # BLAKE2b keys are at most 64 bytes
    _token.cache_clear()


@functools.lru_cache(maxsize=8192)
def _token(kind: str, normalised: str) -> str:
    digest = hashlib.blake2b(normalised.encode("utf-8", "surrogatepass"), key=_MASK_KEY, digest_size=16)
    return f"<{kind}:{digest.hexdigest()[:8]}>"


def _normalise(kind: str, value: str) -> str:
    """The form that is hashed, so that one datum written differently gives one token."""
    if kind in ("bin", "iin"):
        digits = _NON_DIGITS.sub("", value)
        return digits or value.strip()
    if kind == "phone":
        digits = _NON_DIGITS.sub("", value)
        if len(digits) == 11 and digits.startswith("8"):
            digits = "7" + digits[1:]  # 8 7xx … is the national way of writing +7 7xx …
        return digits or value.strip()
    if kind == "email":
        found = _EMAIL_RE.search(value)
        return (found.group(0) if found else value).strip().lower()
    return " ".join(value.split()).casefold()


def _mask_as(kind: str, value: str) -> str:
    return _token(kind, _normalise(kind, value))


def _iin_bin_plausible(digits: str) -> bool:
    """Checksum of Kazakhstan IIN/BIN (weights 1..11, then 3..11,1,2) and a month in digits 3-4."""
    d = [int(c) for c in digits]
    if not 1 <= d[2] * 10 + d[3] <= 12:
        return False
    check = sum(w * x for w, x in zip(range(1, 12), d, strict=False)) % 11
    if check == 10:
        check = sum(w * x for w, x in zip((3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2), d, strict=False)) % 11
        if check == 10:
            return False
    return check == d[11]


def _replace_email(match: re.Match[str]) -> str:
    return _mask_as("email", match.group(0))


def _replace_number(match: re.Match[str]) -> str:
    kind, text = match.lastgroup, match.group(0)
    if kind == "grouped":
        digits = _NON_DIGITS.sub("", text)
        return _token("bin", digits) if _iin_bin_plausible(digits) else text
    return _mask_as(kind or "bin", text)


def mask_text(text: str) -> str:
    """``text`` with every IIN/BIN, e-mail and phone number replaced by its token. Idempotent.

    E-mails first (a mailbox may be all digits), then numbers; both passes are linear in ``text``.
    """
    if "@" in text:
        text = _EMAIL_RE.sub(_replace_email, text)
    if _HAS_DIGIT.search(text):
        text = _NUMBER_RE.sub(_replace_number, text)
    return text


def _norm_key(key: object) -> str:
    return key.lower().replace("_", "").replace("-", "") if isinstance(key, str) else ""


def _mask_under(kind: str, value: Any, parent: str) -> Any:
    """Mask a value that sits under a personal-data key: the whole value goes."""
    if isinstance(value, str):
        return value if not value or _TOKEN_RE.fullmatch(value) else _mask_as(kind, value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, Mapping):
        if parent == "owner":  # an owner object (also inside a list of owners): its own keys decide
            return _mask_mapping(value, parent)
        # e.g. name: {first: …, last: …}: every leaf goes, PII sub-keys by their own kind
        return {
            (mask_text(k) if isinstance(k, str) else k): (
                _mask_keyed(k, v, parent) if _norm_key(k) in _PII_KEYS else _mask_under(kind, v, parent)
            )
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        return type(value)(_mask_under(kind, item, parent) for item in value)
    return _mask_as(kind, str(value))


def _mask_mapping(mapping: Mapping[Any, Any], parent: str = "") -> dict[Any, Any]:
    return {
        (mask_text(key) if isinstance(key, str) else key): _mask_keyed(key, value, parent)
        for key, value in mapping.items()
    }


def _mask_keyed(key: object, value: Any, parent: str) -> Any:
    norm = _norm_key(key)
    if norm in _NEVER_PII:
        return value
    kind = _PII_KEYS.get(norm)
    if kind == "name" and norm == "name" and parent in _K8S_REF_PARENTS:
        kind = None
    if norm == "owner" and isinstance(value, Mapping):
        kind = None  # an owner object: its own keys decide
    if kind is not None:
        return _mask_under(kind, value, norm)
    return _mask_any(value, norm)


def _mask_any(value: Any, parent: str = "") -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, _SAFE_TYPES):
        return value
    if isinstance(value, int):
        text = str(value)
        masked = mask_text(text)
        return value if masked == text else masked
    if isinstance(value, Mapping):
        return _mask_mapping(value, parent)
    if isinstance(value, (list, tuple, set, frozenset)):
        return type(value)(_mask_any(item, parent) for item in value)
    if isinstance(value, bytes):
        return mask_text(value.decode("utf-8", "replace"))
    return mask_text(repr(value))  # what the renderers would print anyway, but masked


def mask_value(key: str | None, value: Any) -> Any:
    """Mask ``value`` as if it were logged under ``key`` (``None``: no key, only text rules).

    For code that builds messages outside logging: Events, status messages, condition texts.
    """
    return _mask_any(value) if key is None else _mask_keyed(key, value, "")


def masked_email(addr: str) -> str:
    """A recipient shown in a status: ``a***@e***.kz`` (first letter of the mailbox and the domain, TLD kept).

    Deterministic and key-independent on purpose: statuses must not change when the operator
    restarts with another masking key, and a person can still recognise their own address.
    """
    found = _EMAIL_RE.search(addr)
    if not found:
        return "***"
    local, _, domain = found.group(0).rpartition("@")
    labels = domain.split(".")
    return f"{local[:1]}***@{labels[0][:1]}***.{labels[-1]}"


def mask_pii(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask personal data in the event and every value, at any depth.

    An ``exc_info`` still present is formatted first, so tracebacks are masked too.
    """
    if event_dict.get("exc_info"):
        event_dict = structlog.processors.format_exc_info(logger, method_name, event_dict)
    for key, value in list(event_dict.items()):
        if key in _INTERNAL or key in _STRUCTURAL:
            continue
        masked_key = mask_text(key) if isinstance(key, str) else key
        if masked_key != key:
            del event_dict[key]
        event_dict[masked_key] = _mask_any(value) if key == "event" else _mask_keyed(key, value, "")
    return event_dict


def _add_kopf_ref(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Keep the object reference kopf attaches to its per-object records (``kopf.objects``)."""
    record = event_dict.get("_record")
    ref = getattr(record, "k8s_ref", None)
    if isinstance(ref, Mapping):
        event_dict.setdefault("k8s_ref", {k: v for k, v in ref.items() if v is not None})
    return event_dict


class _MaskRecordFilter(logging.Filter):
    """Masks a stdlib record in place, for handlers that do not use our formatter.

    kopf posts ``kopf.objects`` records as Kubernetes Events through its own handler with a plain
    formatter: without this the Events (readable by anyone allowed to list events) carry PII.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, dict):  # a structlog event on its way to ProcessorFormatter: masked there
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it for the handler to report
            return True
        record.msg, record.args = mask_text(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_text(logging.Formatter().formatException(record.exc_info))
        return True


class _TkshHandler(logging.StreamHandler[TextIO]):
    """Our root handler; its class lets configure_logging find and replace it."""


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def configure_logging(level: str = "INFO", json: bool = True, stream: TextIO | None = None) -> None:
    """Route structlog and stdlib logging into one masked JSON (or console) stream. Idempotent.

    Calling again replaces our handler (new stream/format/level) instead of adding one.
    """
    stream = stream if stream is not None else sys.stderr
    renderer: Processor
    if json:
        renderer = structlog.processors.JSONRenderer(ensure_ascii=False)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=bool(getattr(stream, "isatty", lambda: False)()))
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            _add_kopf_ref,
            structlog.processors.format_exc_info,
            mask_pii,
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            renderer,
        ],
    )
    handler = _TkshHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _TkshHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())

    kopf_objects = logging.getLogger("kopf.objects")
    if not any(isinstance(f, _MaskRecordFilter) for f in kopf_objects.filters):
        kopf_objects.addFilter(_MaskRecordFilter())

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str | None = None, **initial: Any) -> structlog.stdlib.BoundLogger:
    """A structlog logger named like a stdlib one (``tksh.handlers.directory``)."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name, **initial)
    return logger


set_mask_key()
