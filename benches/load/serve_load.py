#!/usr/bin/env python3
"""Load scenarios for `provgate serve` against a slow Gitea (issue 12).

Standard library only. Starts its own Gitea stand-in (answers the commits
API after a fixed delay, counts requests in flight), builds a policy for it,
starts `provgate serve`, and measures:

  isolation  N look-ups pending on a Gitea that answers after DELAY s; a
             request whose commit answer is already cached: its latency,
             and the server's thread count while the N are pending.
  burst      N requests for distinct commits at once on a DELAY s Gitea:
             wall time until the last verdict, the server's peak RSS.
  cached     verdicts/s for a subject whose answer is cached, with wrk
             (Debian's `wrk`), if installed.

Usage (release build first: cargo build --release -p provgate):
  benches/load/serve_load.py isolation --pending 1500 --delay 2
  benches/load/serve_load.py burst --requests 3000 --delay 1 --gitea-concurrency 4096
  benches/load/serve_load.py cached --seconds 10 --connections 64

PROVGATE=/path/to/provgate picks another binary; --gitea-concurrency 0 leaves
the flag out (provgate 0.1 has none), for side-by-side runs.

Figures and the machine they were taken on: docs/benchmarks.md.
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("PROVGATE", os.path.join(ROOT, "target", "release", "provgate"))
SOURCE = "org.opencontainers.image.source"


class Gitea:
    """GET /api/v1/repos/{o}/{r}/git/commits/{sha} -> 200 {"sha": sha} after `delay` s."""

    def __init__(self, delay):
        self.delay = delay
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests = 0

    async def start(self):
        self.server = await asyncio.start_server(self.connection, "127.0.0.1", 0, backlog=8192)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def connection(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line = head.split(b"\r\n", 1)[0].decode()
                path = line.split(" ")[1]
                self.requests += 1
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                try:
                    await asyncio.sleep(self.delay)
                finally:
                    self.in_flight -= 1
                sha = path.split("?")[0].rsplit("/", 1)[-1]
                body = json.dumps({"sha": sha}).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                    + str(len(body)).encode()
                    + b"\r\n\r\n"
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def subject(sha, repo="app"):
    return {
        "mode": "enforce",
        "subject": {
            "reference": "git.example/molecule-ai/%s:staging-%s" % (repo, sha),
            "digest": "sha256:" + "ab" * 32,
            "labels": {
                SOURCE: "http://%s/molecule-ai/%s" % (GITEA_HOST, repo),
                "org.opencontainers.image.revision": sha,
                "org.opencontainers.image.created": "2026-11-01T10:00:00Z",
                "molecule.workflow.run_id": "4242",
            },
        },
    }


GITEA_HOST = None


def sha_of(i):
    return ("%040x" % (0xC0FFEE0000 + i))[-40:]


async def post(port, body):
    """One POST /v1/verify on its own connection: (status, seconds)."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = json.dumps(body).encode()
    writer.write(
        b"POST /v1/verify HTTP/1.1\r\nhost: provgate\r\ncontent-type: application/json\r\n"
        b"connection: close\r\ncontent-length: " + str(len(data)).encode() + b"\r\n\r\n" + data
    )
    await writer.drain()
    response = await reader.read()
    writer.close()
    status = int(response.split(b" ", 2)[1])
    return status, time.perf_counter() - started, response


def cpu_seconds(pid):
    """User + system CPU time the process has used."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status(pid):
    fields = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


async def start_serve(policy, gitea_concurrency, extra=()):
    args = [BINARY, "serve", "--listen", "127.0.0.1:0", "--policy", policy, "--gitea-timeout", "60", *extra]
    if gitea_concurrency:
        # 0 leaves the flag out, for a provgate older than the flag (0.1).
        args += ["--gitea-concurrency", str(gitea_concurrency)]
    env = dict(os.environ, RUST_LOG="warn")
    proc = await asyncio.create_subprocess_exec(*args, stderr=subprocess.PIPE, env=env)
    while True:
        line = (await proc.stderr.readline()).decode()
        if not line:
            raise SystemExit("provgate serve exited before listening")
        m = re.search(r"listening on http://([0-9.]+):(\d+)", line)
        if m:
            break
    asyncio.get_running_loop().create_task(drain(proc.stderr))
    return proc, int(m.group(2))


async def drain(stream):
    while await stream.read(65536):
        pass


def build_policy(gitea_port, workdir):
    settings = os.path.join(workdir, "settings.json")
    with open(settings, "w") as f:
        json.dump({"gitea_base_url": "http://127.0.0.1:%d" % gitea_port, "allowed_owners": ["molecule-ai"]}, f)
    out = os.path.join(workdir, "policy.wasm")
    subprocess.run([BINARY, "policy", "build", "--settings", settings, "--out", out], check=True, stdout=subprocess.DEVNULL)
    return out


async def serve_for(gitea, workdir, gitea_concurrency):
    """`provgate serve` with a policy whose Gitea is `gitea`: (process, port)."""
    global GITEA_HOST
    GITEA_HOST = "127.0.0.1:%d" % gitea.port
    return await start_serve(build_policy(gitea.port, workdir), gitea_concurrency)


async def isolation(args):
    gitea = await Gitea(args.delay).start()
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = await serve_for(gitea, tmp, args.gitea_concurrency)
        status, warm, _ = await post(port, subject(sha_of(0)))
        assert status == 200, status
        pending = [asyncio.create_task(post(port, subject(sha_of(i + 1)))) for i in range(args.pending)]
        # 0.1 held a blocking thread per pending look-up, at most 512.
        expected = args.expect_in_flight or args.pending
        while gitea.in_flight < expected:
            await asyncio.sleep(0.01)
        threads = int(proc_status(proc.pid)["Threads"])
        cached = []
        for _ in range(args.samples):
            status, seconds, body = await post(port, subject(sha_of(0)))
            assert status == 200 and b'"allowed":true' in body, body[:300]
            cached.append(seconds * 1000)
            assert gitea.in_flight >= expected, "the pending look-ups finished during the sample"
        still_pending = gitea.in_flight
        results = await asyncio.gather(*pending)
        proc.terminate()
        await proc.wait()
    print(json.dumps({
        "scenario": "isolation",
        "pending_lookups": args.pending,
        "gitea_delay_s": args.delay,
        "pending_at_last_sample": still_pending,
        "cached_request_ms": {
            "median": round(statistics.median(cached), 2),
            "max": round(max(cached), 2),
            "samples": len(cached),
        },
        "threads_while_pending": threads,
        "pending_requests_ok": sum(1 for s, _, _ in results if s == 200),
    }, indent=2))


async def burst(args):
    gitea = await Gitea(args.delay).start()
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = await serve_for(gitea, tmp, args.gitea_concurrency)
        started = time.perf_counter()
        results = await asyncio.gather(*(post(port, subject(sha_of(i))) for i in range(args.requests)))
        wall = time.perf_counter() - started
        status = proc_status(proc.pid)
        cpu = cpu_seconds(proc.pid)
        proc.terminate()
        await proc.wait()
    print(json.dumps({
        "scenario": "burst",
        "requests": args.requests,
        "gitea_delay_s": args.delay,
        "gitea_concurrency": args.gitea_concurrency,
        "wall_s": round(wall, 3),
        "ok": sum(1 for s, _, _ in results if s == 200),
        "gitea_max_in_flight": gitea.max_in_flight,
        "peak_rss_mib": round(int(status["VmHWM"].split()[0]) / 1024, 1),
        "threads": int(status["Threads"]),
        "provgate_cpu_s": round(cpu, 3),
        "load_script_cpu_s": round(time.process_time(), 3),
    }, indent=2))


async def cached(args):
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    gitea = await Gitea(0).start()
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = await serve_for(gitea, tmp, args.gitea_concurrency)
        body = subject(sha_of(0))
        status, _, _ = await post(port, body)
        assert status == 200
        script = os.path.join(tmp, "verify.lua")
        with open(script, "w") as f:
            f.write('wrk.method = "POST"\nwrk.headers["content-type"] = "application/json"\n')
            f.write("wrk.body = %s\n" % json.dumps(json.dumps(body)))
        wrk = await asyncio.create_subprocess_exec(
            "wrk", "-t", "1", "-c", str(args.connections), "-d", "%ds" % args.seconds, "--latency",
            "-s", script, "http://127.0.0.1:%d/v1/verify" % port, stdout=subprocess.PIPE)
        out = (await wrk.communicate())[0].decode()
        proc.terminate()
        await proc.wait()
    print(out)
    print(json.dumps({"scenario": "cached", "gitea_requests": gitea.requests}, indent=2))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="scenario", required=True)
    p = sub.add_parser("isolation")
    p.add_argument("--pending", type=int, default=1500)
    p.add_argument("--delay", type=float, default=2.0)
    p.add_argument("--samples", type=int, default=20)
    p.add_argument("--expect-in-flight", type=int, default=0, help="look-ups the server keeps in flight (0: all)")
    p.add_argument("--gitea-concurrency", type=int, default=4096)
    p = sub.add_parser("burst")
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument("--delay", type=float, default=1.0)
    p.add_argument("--gitea-concurrency", type=int, default=4096)
    p = sub.add_parser("cached")
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--gitea-concurrency", type=int, default=64)
    args = parser.parse_args()
    if not os.path.exists(BINARY):
        raise SystemExit("%s not found: cargo build --release -p provgate (or set PROVGATE)" % BINARY)
    asyncio.run({"isolation": isolation, "burst": burst, "cached": cached}[args.scenario](args))


if __name__ == "__main__":
    main()
