"""Probes per CPU-second of tksh's prober against Prometheus blackbox_exporter, same targets, same run (issue 6).

    .venv/bin/python bench/bench_probes.py [--probes 10000] [--concurrency 32] [--rounds 2]
                                           [--targets 10000] [--interval 2] [--baseline 30] [--duration 60]

Needs Debian's ``nginx`` and ``prometheus-blackbox-exporter``: ``bash hack/tools/install.sh`` (as root) installs
nginx and unpacks ``blackbox_exporter`` into its cache (``~/.cache/tksh/tools/bin``), where this script finds it.
Everything is on 127.0.0.1: nginx (one process, ``master_process off``, a tiny config in a temporary folder, no root
paths) answers ``200 ok`` on every path of a few ports; blackbox_exporter runs with one ``http_2xx`` module.

1. Probes per CPU-second. blackbox_exporter is driven with concurrent ``GET /probe?target=...&module=http_2xx``
   requests from this process; its CPU is read from ``/proc/<pid>/stat`` (utime + stime) before and after, so the
   driver's own CPU is *not* counted for blackbox. tksh's ``Prober`` runs in this process with the same concurrency;
   its CPU is this process's (``time.process_time``, all threads), so the asyncio loop and everything else is
   counted. nginx's CPU is counted for neither. Rounds alternate (blackbox, tksh, blackbox, tksh, ...) and add up.
   Latency: tksh's ``ProbeResult.duration``; blackbox's own ``probe_duration_seconds`` from each answer (both
   measured inside the prober, from the start of the probe to the end of the HTTP exchange).
   ``--probes 0`` skips this part.
2. Sustained load: the ``Scheduler`` (the operator's) with ``--targets`` targets at ``--interval`` seconds (default:
   the CRD's default probe interval) for ``--duration`` seconds, then the same targets at ``--baseline`` seconds
   (default 30, the CRD's former default; 0: skip) in the same run; CPU share = this process's CPU seconds / wall
   seconds (1.0 = one core busy). The scheduler runs on one event loop, so it cannot use more than one core: when
   ``targets / interval`` probes per second need more, fewer probes run than expected (the "achieved" column).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp

from tksh.monitoring.probes import Prober, ProbeResult, ProbeSpec
from tksh.monitoring.scheduler import Scheduler
from tksh.resources.common import Probe

NGINX_CONF = """\
worker_processes 1;
master_process off;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_timeout 5;
    server {{
{listens}
        location / {{ default_type text/plain; return 200 "ok\\n"; }}
    }}
}}
"""

BLACKBOX_CONF = """\
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def which(*names: str) -> str:
    """The first of ``names`` found on PATH, in /usr/sbin or in hack/tools/install.sh's cache."""
    cache = Path(os.environ.get("TKSH_CACHE_DIR", Path.home() / ".cache" / "tksh")) / "tools" / "bin"
    for name in names:
        for folder in (None, "/usr/sbin", str(cache)):
            found = shutil.which(name, path=folder)
            if found:
                return found
    sys.exit(f"bench_probes: {' or '.join(names)} not found: run `bash hack/tools/install.sh` as root "
             "(installs Debian's nginx and prometheus-blackbox-exporter)")


def proc_cpu(pid: int) -> float:
    """utime + stime of a process, in seconds (/proc/<pid>/stat, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def versions() -> str:
    """nginx's and blackbox_exporter's versions, as they print them."""
    blackbox = subprocess.run([which("prometheus-blackbox-exporter", "blackbox_exporter"), "--version"],
                              capture_output=True, text=True, check=False)
    nginx = subprocess.run([which("nginx"), "-v"], capture_output=True, text=True, check=False)
    return f"{nginx.stderr.strip()}; {(blackbox.stdout + blackbox.stderr).splitlines()[0]}"


def own_cpu() -> float:
    return time.process_time()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def wait_port(port: int, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


@contextlib.contextmanager
def servers(tmp: Path, nginx_ports: list[int], blackbox_port: int) -> Iterator[tuple[subprocess.Popen[bytes], ...]]:
    for folder in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / folder).mkdir()
    listens = "\n".join(f"        listen 127.0.0.1:{port} backlog=4096;" for port in nginx_ports)
    (tmp / "nginx.conf").write_text(NGINX_CONF.format(tmp=tmp, listens=listens))
    (tmp / "blackbox.yml").write_text(BLACKBOX_CONF)
    nginx = subprocess.Popen([which("nginx"), "-p", str(tmp), "-e", str(tmp / "error.log"), "-c",
                              str(tmp / "nginx.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    blackbox = subprocess.Popen(
        [which("prometheus-blackbox-exporter", "blackbox_exporter"), f"--config.file={tmp / 'blackbox.yml'}",
         f"--web.listen-address=127.0.0.1:{blackbox_port}", "--log.level=error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield nginx, blackbox
    finally:
        for process in (nginx, blackbox):
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def run_blackbox(port: int, targets: list[str], total: int, concurrency: int, pid: int) -> dict[str, object]:
    latencies: list[float] = []
    failures = 0
    left = total
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
        async def worker(number: int) -> None:
            nonlocal left, failures
            i = number
            while left > 0:
                left -= 1
                target = targets[i % len(targets)]
                i += concurrency
                url = f"http://127.0.0.1:{port}/probe"
                async with http.get(url, params={"target": target, "module": "http_2xx"}) as response:
                    text = await response.text()
                values = dict(line.split(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
                if values.get("probe_success", "0").strip() != "1":
                    failures += 1
                latencies.append(float(values.get("probe_duration_seconds", "nan")))

        cpu0, wall0 = proc_cpu(pid), time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(concurrency)))
        cpu, wall = proc_cpu(pid) - cpu0, time.perf_counter() - wall0
    return {"cpu": cpu, "wall": wall, "probes": total, "failures": failures, "latencies": latencies}


async def run_tksh(prober: Prober, specs: list[ProbeSpec], total: int, concurrency: int) -> dict[str, object]:
    latencies: list[float] = []
    failures = 0
    left = total

    async def worker(number: int) -> None:
        nonlocal left, failures
        i = number
        while left > 0:
            left -= 1
            result: ProbeResult = await prober.probe(specs[i % len(specs)])
            i += concurrency
            if not result.ok:
                failures += 1
            latencies.append(result.duration)

    cpu0, wall0 = own_cpu(), time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    cpu, wall = own_cpu() - cpu0, time.perf_counter() - wall0
    return {"cpu": cpu, "wall": wall, "probes": total, "failures": failures, "latencies": latencies}


def add(into: dict[str, object], part: dict[str, object]) -> None:
    for key, value in part.items():
        if isinstance(value, list):
            into.setdefault(key, [])
            into[key] = [*into[key], *value]  # type: ignore[misc]
        else:
            into[key] = float(into.get(key, 0)) + float(value)  # type: ignore[arg-type]


def row(name: str, figures: dict[str, object]) -> tuple[float, str]:
    cpu, wall, probes = float(figures["cpu"]), float(figures["wall"]), float(figures["probes"])  # type: ignore[arg-type]
    latencies: list[float] = figures["latencies"]  # type: ignore[assignment]
    per_cpu = probes / cpu if cpu else float("inf")
    text = (f"| {name} | {int(probes):,} | {int(float(figures['failures'])):,} | {cpu:.2f} | {per_cpu:,.0f} "  # type: ignore[arg-type]
            f"| {1000 * cpu / probes:.3f} | {probes / wall:,.0f} | {1000 * pct(latencies, 0.5):.2f} "
            f"| {1000 * pct(latencies, 0.99):.2f} |")
    return per_cpu, text


async def sustained(ports: list[int], targets: int, interval: float, duration: float) -> tuple[float, str]:
    """One sustained run; its CPU share and its table row."""
    prober = Prober()
    results = {"ok": 0, "failed": 0}

    def on_result(key: str, spec: ProbeSpec, result: ProbeResult) -> None:
        results["ok" if result.ok else "failed"] += 1

    scheduler = Scheduler(prober.probe, on_result=on_result)
    for i in range(targets):
        spec = ProbeSpec(f"http://127.0.0.1:{ports[i % len(ports)]}", path=f"/t/{i}", interval=interval)
        scheduler.add(f"DigitalObject/bench/t{i}", spec)
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    cpu0, wall0 = own_cpu(), time.perf_counter()
    await scheduler.start()
    await asyncio.sleep(duration)
    cpu, wall = own_cpu() - cpu0, time.perf_counter() - wall0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    await scheduler.close(drain=False)
    await prober.close()
    probes = results["ok"] + results["failed"]
    expected = targets / interval * wall
    row = (f"| {targets:,} | {interval:g} | {wall:.1f} | {probes:,} | {probes / expected:.2f} | {results['failed']:,} "
           f"| {cpu:.2f} | {cpu / wall:.3f} | {1000 * cpu / max(probes, 1):.3f} "
           f"| {usage.ru_utime - usage0.ru_utime:.2f} / {usage.ru_stime - usage0.ru_stime:.2f} "
           f"| {usage.ru_maxrss / 1024:.0f} |")
    return cpu / wall, row


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", type=int, default=10000, help="probes per prober per round")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--ports", type=int, default=4, help="nginx ports")
    parser.add_argument("--targets", type=int, default=10000, help="sustained run: targets (0: skip)")
    parser.add_argument("--interval", type=float, default=float(Probe().interval_seconds),
                        help="sustained run: seconds between probes (default: the CRD's default)")
    parser.add_argument("--baseline", type=float, default=30.0,
                        help="sustained run: then the same targets at this interval, for the ratio (0: skip)")
    parser.add_argument("--duration", type=float, default=60.0, help="sustained run: wall seconds measured")
    args = parser.parse_args()

    nginx_ports = [free_port() for _ in range(args.ports)]
    blackbox_port = free_port()
    with tempfile.TemporaryDirectory(prefix="tksh-bench-probes-") as folder, \
            servers(Path(folder), nginx_ports, blackbox_port) as (nginx, blackbox):
        for port in [*nginx_ports, blackbox_port]:
            await wait_port(port)
        print(f"{platform.platform()}, Python {platform.python_version()}; {await asyncio.to_thread(versions)}")
        if args.probes > 0:
            await side_by_side(args, nginx_ports, blackbox_port, nginx.pid, blackbox.pid)
        if args.targets > 0:
            runs = [await sustained(nginx_ports, args.targets, args.interval, args.duration)]
            if args.baseline > 0:
                runs.append(await sustained(nginx_ports, args.targets, args.baseline, args.duration))
            print(f"\nSustained: {args.targets:,} targets for {args.duration:g} s per interval (timeout "
                  f"{ProbeSpec('http://x').timeout:g} s, the CRD's default)")
            print("| targets | interval (s) | wall (s) | probes | achieved (probes / expected) | failed | CPU (s) "
                  "| CPU share | CPU per probe (ms) | user / system (s) | max RSS (MiB) |")
            print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            for _, line in runs:
                print(line)
            if len(runs) == 2:
                print(f"CPU share at {args.interval:g} s / at {args.baseline:g} s: {runs[0][0] / runs[1][0]:.1f}x "
                      f"(probes per second: {args.baseline / args.interval:.0f}x)")


async def side_by_side(args: argparse.Namespace, nginx_ports: list[int], blackbox_port: int, nginx_pid: int,
                       blackbox_pid: int) -> None:
    """Part 1: probes per CPU-second, tksh and blackbox_exporter in alternating rounds."""
    print(f"{args.probes:,} probes per prober per round, {args.rounds} rounds, concurrency {args.concurrency}, "
          f"{len(nginx_ports)} nginx ports; HTTP GET /healthz on 127.0.0.1 (new connection per probe)")
    paths = [f"http://127.0.0.1:{port}/healthz" for port in nginx_ports]
    specs = [ProbeSpec(f"http://127.0.0.1:{port}", path="/healthz") for port in nginx_ports]
    prober = Prober()
    # warm-up (connection pools, code paths), not counted
    await run_blackbox(blackbox_port, paths, 200, args.concurrency, blackbox_pid)
    await run_tksh(prober, specs, 200, args.concurrency)
    bb: dict[str, object] = {}
    tk: dict[str, object] = {}
    nginx_cpu = {"blackbox": 0.0, "tksh": 0.0}
    for _ in range(args.rounds):
        n0 = proc_cpu(nginx_pid)
        add(bb, await run_blackbox(blackbox_port, paths, args.probes, args.concurrency, blackbox_pid))
        n1 = proc_cpu(nginx_pid)
        add(tk, await run_tksh(prober, specs, args.probes, args.concurrency))
        nginx_cpu["blackbox"] += n1 - n0
        nginx_cpu["tksh"] += proc_cpu(nginx_pid) - n1
    await prober.close()
    print("\n| prober | probes | failed | CPU (s) | probes per CPU-second | CPU per probe (ms) "
          "| probes per wall second | p50 (ms) | p99 (ms) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    tk_rate, tk_row = row("tksh `Prober` (in-process, whole process CPU)", tk)
    bb_rate, bb_row = row("blackbox_exporter (its process's CPU only)", bb)
    print(tk_row)
    print(bb_row)
    print(f"\nratio tksh / blackbox_exporter (probes per CPU-second): {tk_rate / bb_rate:.2f}x (goal >= 1.0x)")
    print(f"nginx CPU (not counted above): {nginx_cpu['tksh']:.2f} s during tksh, "
          f"{nginx_cpu['blackbox']:.2f} s during blackbox; blackbox mean latency "
          f"{1000 * statistics.fmean(bb['latencies']):.2f} ms")  # type: ignore[arg-type]


if __name__ == "__main__":
    asyncio.run(main())
