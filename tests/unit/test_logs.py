"""PII masking and the JSON logging set-up (tksh.logs): §9 of the Rules, nothing personal in clear."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from tksh import logs
from tksh.logs import configure_logging, get_logger, mask_pii, mask_text, mask_value, masked_email, set_mask_key


def with_check_digit(first11: str) -> str:
    """A 12-digit IIN/BIN with a valid Kazakhstan check digit (weights 1..11, then 3..11,1,2)."""
    d = [int(c) for c in first11]
    check = sum(w * x for w, x in zip(range(1, 12), d, strict=True)) % 11
    if check == 10:
        check = sum(w * x for w, x in zip((3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2), d, strict=True)) % 11
    assert check < 10, first11
    return first11 + str(check)


IIN = with_check_digit("90010130012")  # 900101300126
OTHER_IIN = with_check_digit("85121540001")
INVALID_IIN = "900101300120"  # wrong check digit: masked all the same when written as one run


@pytest.fixture
def logging_state() -> Iterator[None]:
    """Give each test the global logging config back as it was."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


@pytest.fixture
def json_stream(logging_state: None) -> io.StringIO:
    stream = io.StringIO()
    configure_logging(level="DEBUG", stream=stream)
    return stream


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


# --- text rules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "datum", "kind"),
    [
        ("ИИН {}", IIN, "bin"),
        ("ИИН{}", IIN, "bin"),
        ("GET /api/owners/{}/flats", IIN, "bin"),
        ("owner-{}", IIN, "bin"),
        ("scan_{}.pdf", IIN, "bin"),
        ("5,{},Иванов", IIN, "bin"),
        ("bin={}.", INVALID_IIN, "bin"),
        ("IIN {}", f"{IIN[:4]} {IIN[4:8]} {IIN[8:]}", "bin"),
        ("IIN {}", f"{IIN[:4]}-{IIN[4:8]}-{IIN[8:]}", "bin"),
        ("IIN {}", f"{IIN[:6]} {IIN[6:]}", "bin"),
        ("IIN {}", f"{IIN[:6]}-{IIN[6:]}", "bin"),
        ("{} wrote", "asel.nurlan@mail.kz", "email"),
        ("Asel <{}>", "Asel+tksh@Example.COM", "email"),
        ("жазды: {}.", "асель@пошта.қаз", "email"),
        ("call {} now", "+7 701 234 56 78", "phone"),
        ("call {}", "+7 (701) 234-56-78", "phone"),
        ("call {}", "+77012345678", "phone"),
        ("call {}", "8 701 234 56 78", "phone"),
        ("call {}", "8(701)234-56-78", "phone"),
        ("call {}", "87012345678", "phone"),
        ("call {}", "77012345678", "phone"),
        ("call {}", "8 (7172) 12-34-56", "phone"),
        ("call {}", "+44 20 7946 0958", "phone"),
        ("call {}", "+1 (415) 555-2671", "phone"),
    ],
)
def test_each_kind_is_masked(text: str, datum: str, kind: str) -> None:
    masked = mask_text(text.format(datum))
    assert masked == text.format(mask_text(datum))
    assert re.fullmatch(rf"<{kind}:[0-9a-f]{{8}}>", mask_text(datum))
    assert datum not in masked


@pytest.mark.parametrize(
    "text",
    [
        "2024-06-10T12:34:56.123456Z",
        "2024-06-10T12:34:56+05:00",
        "12:34:56.123456789012",
        "took 0.123456789012s",
        "uuid 123e4567-e89b-12d3-a456-426614174000",
        "uid 123e4567-e89b-12d3-1234-123456789012",  # a UUID whose last group is 12 digits
        "resourceVersion 123456",
        "epoch 1718000000 ms 1718000000123",
        "duration 123456789012ns",
        "HTTP 503 after 200 ms, then 404",
        "dobj-kzh-0001 in tksh-system, incident-7f9c2, job-28634455",
        "sha256 3f2a900101300123ab9c, image@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "ports 8080 8443 9090 and years 2023 2024 2025",
        "1234 5678 9012",  # 4-4-4 that is no IIN/BIN (fails the checksum)
        "kopf@1.45.2",
        "Өтінім мақұлданды. Заявка одобрена: квартира 12, подъезд 3.",
    ],
)
def test_non_pii_is_untouched(text: str) -> None:
    assert mask_text(text) == text


def test_same_value_same_token_and_different_values_differ() -> None:
    one, again, other = mask_text(IIN), mask_text(f"x {IIN} y"), mask_text(OTHER_IIN)
    assert one in again
    assert one != other
    # One datum written differently is still one token: correlation survives formatting.
    assert mask_text("+7 (701) 234-56-78") == mask_text("8 701 234 56 78") == mask_text("77012345678")
    assert mask_text("Asel@Mail.KZ") == mask_text("asel@mail.kz") != mask_text("aset@mail.kz")
    assert mask_text(f"{IIN[:4]} {IIN[4:8]} {IIN[8:]}") == mask_text(IIN)


def test_masking_is_idempotent() -> None:
    text = f"{IIN} asel@mail.kz +7 701 234 56 78"
    once = mask_text(text)
    assert mask_text(once) == once
    assert mask_value("name", mask_value("name", "Асель")) == mask_value("name", "Асель")


def test_the_key_decides_the_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        set_mask_key("replica-secret")
        first = mask_text(IIN)
        set_mask_key("another-secret")
        assert mask_text(IIN) != first
        monkeypatch.setenv("TKSH_LOG_MASK_KEY", "replica-secret")
        set_mask_key()  # what every replica does at import: same env, same tokens
        assert mask_text(IIN) == first
    finally:
        monkeypatch.delenv("TKSH_LOG_MASK_KEY", raising=False)
        set_mask_key()


# --- keys and structures ----------------------------------------------------------------------


def test_values_under_personal_keys_are_masked_at_any_depth() -> None:
    event = {
        "Name": "Асель Нұрланқызы",
        "owner": {"name": "ТОО Жылу", "bin": int(OTHER_IIN), "kind": "organisation"},
        "subjects": [{"full_name": "Иванов Иван", "iin": IIN, "phoneNumber": "+7 701 234 56 78"}],
        "recipients": ("a@mail.kz", "b@mail.kz"),
        "recipient": "Асель <asel@mail.kz>",
        "subject_name": {"first": "Асель", "last": "Нұрланқызы"},
        "owner_name": None,
        "count": 3,
        "co": {"owner": ["Нұрлан", {"name": "Асель", "share": "1/2"}]},
    }
    masked = mask_value(None, event)
    rendered = json.dumps(masked, ensure_ascii=False)
    for clear in ("Асель", "Жылу", "Иванов", OTHER_IIN, IIN, "234 56 78", "@mail.kz"):
        assert clear not in rendered
    assert masked["owner"]["kind"] == "organisation"
    assert masked["owner"]["name"].startswith("<name:")
    assert masked["owner"]["bin"].startswith("<bin:")
    assert masked["subjects"][0]["iin"].startswith("<iin:")
    assert masked["subjects"][0]["phoneNumber"].startswith("<phone:")
    assert isinstance(masked["recipients"], tuple) and masked["recipients"][0].startswith("<email:")
    assert masked["recipient"] == mask_text("asel@mail.kz")  # the address decides the token
    assert masked["owner_name"] is None and masked["count"] == 3
    assert masked["co"]["owner"][0].startswith("<name:") and masked["co"]["owner"][1]["share"] == "1/2"
    assert "Нұрлан" not in rendered
    assert event["Name"] == "Асель Нұрланқызы", "the caller's structures are not modified"


def test_kubernetes_names_and_bookkeeping_stay() -> None:
    obj = {
        "metadata": {"name": "dobj-kzh-0001", "namespace": "tksh", "resourceVersion": "123456789012",
                     "ownerReferences": [{"kind": "Agreement", "name": "agr-1"}]},
        "k8s_ref": {"kind": "DigitalObject", "name": "dobj-kzh-0001"},
        "involvedObject": {"name": "dobj-kzh-0001"},
        "spec": {"owner": {"name": "Асель"}},
    }
    masked = mask_value(None, obj)
    assert masked["metadata"] == obj["metadata"]
    assert masked["k8s_ref"] == obj["k8s_ref"]
    assert masked["involvedObject"] == obj["involvedObject"]
    assert masked["spec"]["owner"]["name"].startswith("<name:")


def test_masked_email_for_statuses() -> None:
    assert masked_email("asel.nurlan@zhylu.kz") == "a***@z***.kz"
    assert masked_email("Асель <асель@пошта.қаз>") == "а***@п***.қаз"
    assert masked_email("not an address") == "***"


def test_processor_with_capture_logs() -> None:
    with capture_logs(processors=[mask_pii]) as captured:
        structlog.get_logger().info(
            f"notified asel@mail.kz about {IIN}", iin=IIN, email="asel@mail.kz", attempt=2,
            note="Өтінім мақұлданды", owner={"name": "Асель", "phone": "8 701 234 56 78"},
        )
    (entry,) = captured
    assert entry["event"] == f"notified {mask_text('asel@mail.kz')} about {mask_text(IIN)}"
    assert entry["iin"].startswith("<iin:") and entry["email"] == mask_text("asel@mail.kz")
    assert entry["attempt"] == 2 and entry["note"] == "Өтінім мақұлданды"
    assert entry["owner"]["name"].startswith("<name:")
    assert entry["owner"]["phone"] == mask_text("+7 701 234 56 78")


def test_processor_formats_and_masks_exc_info() -> None:
    with capture_logs(processors=[mask_pii]) as captured:
        try:
            raise ValueError(f"cannot deliver to asel@mail.kz for {IIN}")
        except ValueError:
            structlog.get_logger().exception("delivery failed")
    (entry,) = captured
    assert "exc_info" not in entry
    assert "ValueError: cannot deliver to <email:" in entry["exception"]
    assert "asel@mail.kz" not in entry["exception"] and IIN not in entry["exception"]


def test_adversarial_input_is_processed_in_linear_time() -> None:
    """A quadratic regex would turn each of these into minutes (the test timeout catches it)."""
    for text in ("a" * 200_000 + "1", "1" * 200_000, "a@" * 100_000, "x@" + "a." * 100_000 + "1",
                 "1234 " * 40_000, "+7 " * 70_000, "8 7" * 70_000):
        assert "<" not in mask_text(text) or text.startswith("x@")


# --- the configured pipeline: JSON lines on a stream ----------------------------------------------


def _posting_disabled() -> object:
    """kopf's settings as kopf passes them; posting off so that kopf's own Event poster (installed on
    ``kopf.objects`` once any operator has run in this process) leaves the record alone."""
    import kopf

    settings = kopf.OperatorSettings()
    settings.posting.enabled = False
    return settings


def test_json_lines_for_structlog_and_stdlib(json_stream: io.StringIO) -> None:
    get_logger("tksh.test").info("grant approved for %s", "asel@mail.kz", iin=IIN, text="Өтінім мақұлданды")
    logging.getLogger("kopf.objects").info(
        f"Handler 'notify' sent mail to asel@mail.kz ({IIN})",
        extra={"k8s_ref": {"kind": "DigitalObject", "name": "dobj-kzh-0001", "namespace": "tksh"},
               "settings": _posting_disabled(), "k8s_skip": False},
    )
    logging.getLogger("aiohttp.access").warning("GET /owners/%s 200", IIN)
    ours, kopf, aiohttp = lines(json_stream)
    raw = json_stream.getvalue()
    assert "asel@mail.kz" not in raw and IIN not in raw
    assert "Өтінім мақұлданды" in raw, "Kazakh text is written as is, not \\u-escaped"

    assert ours["event"] == f"grant approved for {mask_text('asel@mail.kz')}"
    assert ours["level"] == "info" and ours["logger"] == "tksh.test"
    assert ours["timestamp"].endswith("Z") and ours["iin"].startswith("<iin:")
    assert kopf["logger"] == "kopf.objects" and kopf["level"] == "info"
    assert kopf["event"] == f"Handler 'notify' sent mail to {mask_text('asel@mail.kz')} ({mask_text(IIN)})"
    assert kopf["k8s_ref"] == {"kind": "DigitalObject", "name": "dobj-kzh-0001", "namespace": "tksh"}
    assert "settings" not in kopf
    assert aiohttp == {**aiohttp, "logger": "aiohttp.access", "level": "warning",
                       "event": f"GET /owners/{mask_text(IIN)} 200"}


def test_tracebacks_are_masked(json_stream: io.StringIO) -> None:
    log = get_logger("tksh.notify")
    try:
        raise ConnectionRefusedError("SMTP refused RCPT TO:<asel@mail.kz>")
    except ConnectionRefusedError:
        log.exception("sending failed", recipient="asel@mail.kz")
        logging.getLogger("aiosmtplib").exception("stdlib too")
    ours, stdlib = lines(json_stream)
    for entry in (ours, stdlib):
        assert "Traceback (most recent call last)" in entry["exception"]
        assert f"RCPT TO:<{mask_text('asel@mail.kz')}>" in entry["exception"]
    assert "asel@mail.kz" not in json_stream.getvalue()


def test_configure_twice_keeps_one_handler(logging_state: None) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(stream=first)
    configure_logging(stream=second, level="WARNING")
    ours = [h for h in logging.getLogger().handlers if isinstance(h, logs._TkshHandler)]
    assert len(ours) == 1
    logging.getLogger("x").warning("once")
    logging.getLogger("x").info("filtered by level")
    assert [entry["event"] for entry in lines(second)] == ["once"]
    assert first.getvalue() == ""


def test_console_renderer_is_masked_too(logging_state: None) -> None:
    stream = io.StringIO()
    configure_logging(stream=stream, json=False)
    try:
        raise ValueError(f"bad {IIN}")
    except ValueError:
        get_logger("tksh.test").exception("Өтінім failed", email="asel@mail.kz")
    out = stream.getvalue()
    assert "Өтінім failed" in out and mask_text("asel@mail.kz") in out and mask_text(IIN) in out
    assert "asel@mail.kz" not in out and IIN not in out


def test_kopf_event_posting_gets_masked_records(logging_state: None) -> None:
    """kopf posts kopf.objects records as k8s Events with a plain formatter: they must be masked too."""
    configure_logging(stream=io.StringIO())
    plain = io.StringIO()
    handler = logging.StreamHandler(plain)
    logging.getLogger("kopf.objects").addHandler(handler)
    try:
        try:
            raise RuntimeError(f"owner {IIN} unreachable")
        except RuntimeError:
            logging.getLogger("kopf.objects").exception("Handler failed for %s", "asel@mail.kz")
    finally:
        logging.getLogger("kopf.objects").removeHandler(handler)
    out = plain.getvalue()
    assert f"Handler failed for {mask_text('asel@mail.kz')}" in out
    assert f"RuntimeError: owner {mask_text(IIN)} unreachable" in out
    assert "asel@mail.kz" not in out and IIN not in out


# --- properties: whatever surrounds a datum, it never comes out -------------------------------------

surrounding = st.text(
    alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Zs"]), max_size=40
)


@st.composite
def kz_phones(draw: st.DrawFn) -> str:
    area = "7" + draw(st.text(alphabet="0123456789", min_size=2, max_size=2))
    rest = draw(st.text(alphabet="0123456789", min_size=7, max_size=7))
    template = draw(st.sampled_from([
        "+7 {a} {r3} {r2} {r2b}", "+7 ({a}) {r3}-{r2}-{r2b}", "+7{a}{r3}{r2}{r2b}", "+7-{a}-{r3}-{r2}{r2b}",
        "8 {a} {r3} {r2} {r2b}", "8 ({a}) {r3}-{r2}-{r2b}", "8{a}{r3}{r2}{r2b}", "8({a}){r3}{r2}{r2b}",
    ]))
    return template.format(a=area, r3=rest[:3], r2=rest[3:5], r2b=rest[5:])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=surrounding, datum=st.emails(), after=surrounding)
def test_property_emails_never_survive(before: str, datum: str, after: str) -> None:
    assume(datum not in before and datum not in after)
    assert datum not in mask_text(f"{before} {datum} {after}")


@settings(max_examples=200, deadline=None)
@given(before=surrounding, datum=st.text(alphabet="0123456789", min_size=12, max_size=12), after=surrounding)
def test_property_12_digit_ids_never_survive(before: str, datum: str, after: str) -> None:
    assume(datum not in before and datum not in after)
    assert datum not in mask_text(f"{before} {datum} {after}")
    structured = mask_value(None, {"text": [f"{before}\n{datum}"], "iin": datum, "nested": {"n": int(datum)}})
    assert datum not in json.dumps(structured, ensure_ascii=False)


@settings(max_examples=200, deadline=None)
@given(before=surrounding, datum=kz_phones(), after=surrounding)
def test_property_kz_phones_never_survive(before: str, datum: str, after: str) -> None:
    digits_only = "".join(c for c in datum if c.isdigit())
    assume(not any(d in text for d in (datum, digits_only) for text in (before, after)))
    masked = mask_text(f"{before} {datum} {after}")
    assert datum not in masked and digits_only not in masked
