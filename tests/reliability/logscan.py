"""The log scan (§9): no IIN/BIN, e-mail address or phone number in clear in any line the suite's processes wrote.

Generic patterns (any standalone 12-digit number, any e-mail address, any ``+7`` phone number) plus
the exact personal data the workflows feed in. The masked forms (``<bin:1a2b3c4d>``, ``b***@d***.kz``)
do not match. Exempt, as :func:`tksh.logs.mask_text` exempts them: digits glued to letters or other
digits, decimal fractions, a UUID's last group.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
from collections.abc import Iterable, Iterator

from tests.reliability.workflows import ADMIN_MAILBOX, OWNER_BIN, OWNER_NAME, OWNER_PHONE, SENDER
from tksh.logs import configure_logging

TWELVE_DIGITS = re.compile(r"(?<![0-9A-Za-z.])(?<![0-9A-Fa-f]{4}-)\d{12}(?![0-9A-Za-z]|\.\d)")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")
PHONE = re.compile(r"\+7[\s\-()]*\d(?:[\s\-()]*\d){9}")
KNOWN = (OWNER_BIN, OWNER_PHONE, OWNER_NAME, "dostyk12.example.kz", SENDER, ADMIN_MAILBOX)


def findings(lines: Iterable[str]) -> Iterator[tuple[int, str, str]]:
    """(line number, what, the matched text) for every piece of personal data in clear."""
    for number, line in enumerate(lines, 1):
        for what, pattern in (("12 digits", TWELVE_DIGITS), ("e-mail", EMAIL), ("phone", PHONE)):
            for match in pattern.finditer(line):
                yield number, what, match.group(0)
        for value in KNOWN:
            if value in line:
                yield number, "known value", value


def assert_no_personal_data(lines: list[str]) -> int:
    """Fail naming the first findings (the value itself is not repeated); return how many lines were scanned."""
    found = list(findings(lines))
    if found:
        shown = "; ".join(f"line {n}: {what} in {lines[n - 1].replace(value, f'<{what}>')[:200]!r}"
                          for n, what, value in found[:5])
        raise AssertionError(f"{len(found)} pieces of personal data in clear in the logs: {shown}")
    return len(lines)


class LogCapture(io.StringIO):
    """A stream for ``tksh.logs.configure_logging(stream=...)``: the in-process lines, for the scan."""

    def lines(self) -> list[str]:
        return self.getvalue().splitlines()


@contextlib.contextmanager
def captured_logs(level: str = "INFO") -> Iterator[LogCapture]:
    """The product's logging (JSON, masked) of this process into a buffer; the root logger restored after."""
    capture = LogCapture()
    root = logging.getLogger()
    handlers, old_level = list(root.handlers), root.level
    configure_logging(level, json=True, stream=capture)
    try:
        yield capture
    finally:
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
        for handler in [h for h in handlers if h not in root.handlers]:
            root.addHandler(handler)
        root.setLevel(old_level)
