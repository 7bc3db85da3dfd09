"""PromQL helpers of the chart tests: the series names an expression selects, the series the operator exposes, and
those series as Prometheus stores them after a scrape through the chart's ServiceMonitor.

promtool parses expressions (``promtool check rules``); the names are picked out here with a small lexer that drops
what is not a series name: string literals, label matchers, range and subquery brackets, the label lists of
``by``/``without``/``on``/``ignoring``/``group_left``/``group_right``, function names (an identifier followed by
``(``), keywords and numbers.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping

from prometheus_client.parser import text_string_to_metric_families

from tksh.metrics import OperatorMetrics

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_BRACES = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_NUMBER = re.compile(r"(?<![A-Za-z0-9_:])[0-9][0-9A-Za-z.]*")
_TOKEN = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*(?=\s*(\()?)")
_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
                       "unless", "offset", "atan2", "inf", "nan", "Inf", "NaN"})

SCRAPE_JOB = {"job": "tksh-operator", "namespace": "tksh-system", "instance": "10.1.0.11:8080"}
"""The target labels a scrape through the chart's ServiceMonitor adds (release "tksh" in "tksh-system")."""


def series_names(expr: str) -> set[str]:
    """The series names (metrics and recording rules) an expression selects."""
    text = _STRING.sub('""', expr)
    text = _BRACES.sub(" ", text)
    text = _BRACKETS.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    text = _NUMBER.sub(" ", text)
    names = set()
    for match in _TOKEN.finditer(text):
        if match.group(1) or match.group(0) in _KEYWORDS:
            continue
        names.add(match.group(0))
    return names


def exposed_series(metrics: OperatorMetrics) -> set[str]:
    """Every series name the operator's registry can expose, whether or not a sample exists yet."""
    names: set[str] = set()
    for family in metrics.registry.collect():
        if family.type == "counter":
            names |= {family.name + "_total", family.name + "_created"}
        elif family.type == "histogram":
            names |= {family.name + suffix for suffix in ("_bucket", "_sum", "_count", "_created")}
        elif family.type == "info":
            names.add(family.name + "_info")
        else:
            names.add(family.name)
    return names


LABEL_VALUES: Mapping[str, tuple[str, ...]] = {
    "kind": ("DigitalObject", "CentralComponent"),
    "namespace": ("housing",),
    "name": ("osi-dostyk",),
    "phase": ("Integrated", "UnderReview", "Active", "Terminated", "connect", "processing"),
    "channel": ("email", "webhook"),
    "result": ("delivered", "retry", "failed", "ok", "error"),
    "reason": ("REVOKED", "EXPIRED"),
    "cause": ("new",),
    "resource": ("accessgrants.v1alpha1.tksh.kz",),
    "code": ("500",),
}


def populated_metrics() -> OperatorMetrics:
    """An ``OperatorMetrics`` with a sample in every metric, for every combination of ``LABEL_VALUES``."""
    metrics = OperatorMetrics()
    for metric in vars(metrics).values():
        labelnames: tuple[str, ...] = getattr(metric, "_labelnames", ())
        kind = getattr(metric, "_type", None)
        if kind is None or kind == "info":
            continue
        children = ([metric.labels(*combo) for combo in itertools.product(*(LABEL_VALUES[n] for n in labelnames))]
                    if labelnames else [metric])
        for child in children:
            if kind == "counter":
                child.inc(3)
            elif kind == "gauge":
                child.set(1)
            elif kind == "histogram":
                child.observe(42)
    return metrics


def scraped_input_series(metrics: OperatorMetrics, samples: int = 180) -> list[dict[str, str]]:
    """The registry's samples as ``promtool test rules`` input series, labelled as a scrape through the chart's
    ServiceMonitor stores them (the metric's ``namespace`` becomes ``exported_namespace``); counters grow."""
    out: list[dict[str, str]] = []
    text = metrics.exposition().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            labels = {("exported_namespace" if k == "namespace" else k): v for k, v in sample.labels.items() if v}
            labels.update(SCRAPE_JOB)
            growing = family.type in ("counter", "histogram") and not sample.name.endswith("_info")
            value = f"0+{sample.value:g}x{samples}" if growing else f"{sample.value:g}x{samples}"
            out.append({"series": sample.name + _selector(labels), "values": value})
    return out


def _selector(labels: Mapping[str, str]) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def rule_names(groups: Iterable[Mapping[str, object]]) -> set[str]:
    """The series names the recording rules of rule groups produce."""
    return {str(rule["record"]) for group in groups for rule in group["rules"] if "record" in rule}  # type: ignore[attr-defined]
