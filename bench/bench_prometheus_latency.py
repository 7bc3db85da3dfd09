"""The baseline of issue 6, measured: Prometheus + blackbox_exporter + Alertmanager at their defaults, failure → e-mail.

    .venv/bin/python bench/bench_prometheus_latency.py [--objects 20] [--rounds 1] [--failure status|refused|hang]

Needs Debian's ``prometheus``, ``prometheus-alertmanager`` and ``prometheus-blackbox-exporter``: found on PATH, in
/usr/bin, in hack/tools/install.sh's cache (``~/.cache/tksh/tools/bin``) or in ``--bin DIR`` (e.g. the ``usr/bin`` of
``apt-get download prometheus prometheus-alertmanager`` unpacked with ``dpkg-deb -x``; no service is installed).
Debian's Alertmanager reads its default e-mail template from ``/usr/share/prometheus/alertmanager/default.tmpl``
(installed by its package; with a bare binary, copy the ``.tmpl`` files of that folder of the ``.deb`` there).

The same setting as ``bench_notify_latency.py``: ``--objects`` local ``HTTPTarget`` s, each failing at a random
instant within one scrape interval, and real SMTP into an in-process ``MailSink``; the latency runs from the failure
to the owner's e-mail from Alertmanager being received. Everything on 127.0.0.1, in a temporary folder.

Settings: Prometheus' defaults (``scrape_interval`` and ``evaluation_interval`` 1 m, ``scrape_timeout`` 10 s), one
blackbox ``http_2xx`` module with its defaults, one alerting rule ``probe_success == 0`` without ``for`` (it fires at
the first evaluation that sees the failed probe), and Alertmanager's route defaults (``group_wait`` 30 s,
``group_interval`` 5 m, ``repeat_interval`` 4 h) with ``group_by: [instance]`` so that each target's owner gets an
e-mail of its own at once (with the default grouping, all alerts share one group and every alert after the first
waits ``group_interval``), one route per owner. No setting is tuned for speed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_notify_latency import Target, owner_email, pct
from bench_probes import free_port
from tksh.sandbox.mailsink import MailSink, ReceivedMail

BLACKBOX = """\
modules:
  http_2xx:
    prober: http
    http:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
"""


def find(name: str, extra: str | None) -> str:
    cache = Path(os.environ.get("TKSH_CACHE_DIR", Path.home() / ".cache" / "tksh")) / "tools" / "bin"
    for folder in (extra, None, "/usr/bin", str(cache)):
        found = shutil.which(name, path=folder)
        if found:
            return found
    sys.exit(f"bench_prometheus_latency: {name} not found (Debian packages prometheus, prometheus-alertmanager, "
             "prometheus-blackbox-exporter; see --bin)")


def prometheus_config(targets: list[Target], blackbox: int, alertmanager: int, rules: Path) -> str:
    urls = "\n".join(f"          - {t.url}/healthz" for t in targets)
    return f"""\
# Every interval and timeout left at its default.
rule_files: ["{rules}"]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:{alertmanager}"]
scrape_configs:
  - job_name: blackbox
    metrics_path: /probe
    params: {{module: [http_2xx]}}
    static_configs:
      - targets:
{urls}
    relabel_configs:
      - {{source_labels: [__address__], target_label: __param_target}}
      - {{source_labels: [__param_target], target_label: instance}}
      - {{target_label: __address__, replacement: "127.0.0.1:{blackbox}"}}
"""


RULES = """\
groups:
  - name: targets
    rules:
      - alert: TargetDown
        expr: probe_success == 0
"""


def alertmanager_config(targets: list[Target], smtp: int) -> str:
    routes = "\n".join(f'    - matchers: [\'instance="{t.url}/healthz"\']\n      receiver: owner-{i}'
                       for i, t in enumerate(targets))
    receivers = "\n".join(f"  - name: owner-{i}\n    email_configs: [{{to: {owner_email(i)}}}]"
                          for i in range(len(targets)))
    return f"""\
global:
  smtp_smarthost: 127.0.0.1:{smtp}
  smtp_from: alertmanager@tksh.example.kz
  smtp_require_tls: false
route:
  receiver: nobody
  group_by: [instance]
  routes:
{routes}
receivers:
  - name: nobody
{receivers}
"""


def start(tmp: Path, commands: list[list[str]]) -> list[subprocess.Popen[bytes]]:
    with (tmp / "log").open("wb") as log:  # the children keep their own descriptors
        return [subprocess.Popen(command, stdout=log, stderr=log) for command in commands]


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def versions(paths: list[str]) -> str:
    found = []
    for path in paths:
        run = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
        found.append((run.stdout or run.stderr).splitlines()[0])
    return "; ".join(found)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--failure", choices=("status", "refused", "hang"), default="status")
    parser.add_argument("--bin", default=None, help="a folder with prometheus and prometheus-alertmanager")
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()
    random.seed(args.seed)
    prometheus, alertmanager = find("prometheus", args.bin), find("prometheus-alertmanager", args.bin)
    blackbox = find("prometheus-blackbox-exporter", args.bin)
    ports = {name: free_port() for name in ("prometheus", "alertmanager", "blackbox")}
    samples: list[float] = []
    async with MailSink() as mail:
        targets = [Target(f"heat-{i}") for i in range(args.objects)]
        for target in targets:
            await target.start()
        with tempfile.TemporaryDirectory(prefix="tksh-bench-prometheus-") as folder:
            tmp = Path(folder)
            (tmp / "blackbox.yml").write_text(BLACKBOX)
            (tmp / "rules.yml").write_text(RULES)
            (tmp / "prometheus.yml").write_text(prometheus_config(targets, ports["blackbox"], ports["alertmanager"],
                                                                  tmp / "rules.yml"))
            (tmp / "alertmanager.yml").write_text(alertmanager_config(targets, mail.port))
            processes = start(tmp, [
                [blackbox, f"--config.file={tmp / 'blackbox.yml'}",
                 f"--web.listen-address=127.0.0.1:{ports['blackbox']}"],
                [alertmanager, f"--config.file={tmp / 'alertmanager.yml'}", f"--storage.path={tmp / 'am'}",
                 f"--web.listen-address=127.0.0.1:{ports['alertmanager']}", "--cluster.listen-address="],
                [prometheus, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{ports['prometheus']}"],
            ])
            try:
                print(f"{platform.platform()}; {versions([prometheus, alertmanager, blackbox])}")
                print("waiting 75 s: the first scrapes and rule evaluation (1 m intervals) see every target up")
                await asyncio.sleep(75)
                for process in processes:
                    if process.poll() is not None:
                        sys.exit(f"{process.args!r} exited ({process.returncode}):\n"
                                 + "\n".join((tmp / "log").read_text().splitlines()[-5:]))
                for number in range(args.rounds):
                    found = await one_round(mail, targets, args.failure)
                    print(f"round {number + 1}: " + ", ".join(f"{x:.1f}" for x in sorted(found)) + " s")
                    samples += found
                    for target in targets:
                        await target.recover()
                    if number + 1 < args.rounds:
                        print("waiting 6 minutes: the alerts resolve (a group's next e-mail waits group_interval)")
                        await asyncio.sleep(360)
            finally:
                stop(processes)
        for target in targets:
            await target.close()
    print("\n| failure → owner's e-mail, Prometheus + blackbox_exporter + Alertmanager defaults, measured "
          "| samples | p50 (s) | p99 (s) | max (s) | min (s) |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| `{args.failure}` (scrape 1 m, evaluation 1 m, `for: 0`, group_wait 30 s) | {len(samples)} "
          f"| {pct(samples, 0.5):.1f} | {pct(samples, 0.99):.1f} | {max(samples):.1f} | {min(samples):.1f} |")


async def one_round(mail: MailSink, targets: list[Target], failure: str) -> list[float]:
    async def fail_and_wait(i: int, target: Target) -> float:
        await asyncio.sleep(random.uniform(0, 60))
        failed_at = datetime.datetime.now(datetime.UTC)
        await target.fail(failure)

        def mine(m: ReceivedMail) -> bool:
            return m.envelope_to == (owner_email(i),) and m.received_at >= failed_at

        received = await mail.wait_for(mine, timeout=400)
        return (received.received_at - failed_at).total_seconds()

    started = time.monotonic()
    found = await asyncio.gather(*(fail_and_wait(i, t) for i, t in enumerate(targets)))
    print(f"(round took {time.monotonic() - started:.0f} s)")
    return list(found)


if __name__ == "__main__":
    asyncio.run(main())
