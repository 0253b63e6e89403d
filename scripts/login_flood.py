#!/usr/bin/env python3
"""Login flood benchmark: the latency of another route (an authenticated document listing) while
wrong-password logins flood a served `steno`, against the same route without a flood.

Usage: scripts/login_flood.py --steno PATH [--seconds 10] [--flood 8]

Phases, each --seconds long, one probe client sending requests back to back on one connection:
  1. idle: the probe alone;
  2. one client: the flooders log in to one real account with wrong passwords, from one address;
  3. many clients: each flood request names a new email and, through X-Forwarded-For (the server
     is started with STENO_TRUSTED_PROXIES=127.0.0.1), a new client address, so neither the
     per-account nor the per-client limit applies and only bounded hashing protects other routes.
Only the standard library is used; the server runs on loopback and stops with the script.
"""

import argparse
import http.client
import json
import os
import subprocess
import tempfile
import threading
import time

PASSWORD = "correct horse battery staple"
EMAIL = "avery@flood.test"


def start_server(binary, data_dir):
    env = dict(os.environ)
    env.update(
        STENO_DATA_DIR=data_dir,
        STENO_LOG="error",
        STENO_TRUSTED_PROXIES="127.0.0.1",
    )
    for name in ("DATABASE_URL", "ANTHROPIC_API_KEY", "STENO_PUBLIC_URL"):
        env.pop(name, None)
    process = subprocess.Popen(
        [binary, "serve", "--addr", "127.0.0.1:0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    for line in process.stdout:
        if "http://" in line:
            address = line[line.index("http://") + len("http://"):].split()[0]
            host, port = address.rsplit(":", 1)
            return process, host, int(port)
    process.kill()
    raise SystemExit(f"{binary} printed no address")


def request(connection, method, path, body=None, headers=None):
    payload = json.dumps(body).encode() if body is not None else None
    all_headers = {"content-type": "application/json"} if payload else {}
    all_headers.update(headers or {})
    connection.request(method, path, body=payload, headers=all_headers)
    response = connection.getresponse()
    data = response.read()
    return response.status, data


def percentile(sorted_values, fraction):
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), int(-(-len(sorted_values) * fraction // 1))))
    return sorted_values[rank - 1]


def run_phase(host, port, token, flood, options):
    stop = threading.Event()
    statuses = {}
    lock = threading.Lock()
    sequence = [0]
    failures = [0]

    def flooder():
        connection = http.client.HTTPConnection(host, port, timeout=30)
        while not stop.is_set():
            with lock:
                number = sequence[0]
                sequence[0] += 1
            headers = {}
            email = EMAIL
            if flood == "many":
                headers["x-forwarded-for"] = (
                    f"10.{(number >> 16) & 255}.{(number >> 8) & 255}.{number & 255}"
                )
                email = f"user{number}@flood.test"
            try:
                status, _ = request(
                    connection,
                    "POST",
                    "/v1/auth/login",
                    {"email": email, "password": "wrong password here"},
                    headers,
                )
                with lock:
                    statuses[status] = statuses.get(status, 0) + 1
            except (OSError, http.client.HTTPException):
                with lock:
                    failures[0] += 1
                connection.close()
                connection = http.client.HTTPConnection(host, port, timeout=30)

    threads = []
    if flood:
        threads = [threading.Thread(target=flooder) for _ in range(options.flood)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        with lock:
            statuses.clear()
            failures[0] = 0
    latencies = []
    probe_errors = 0
    probe = http.client.HTTPConnection(host, port, timeout=30)
    started = time.monotonic()
    while time.monotonic() - started < options.seconds:
        begin = time.monotonic()
        try:
            status, _ = request(
                probe, "GET", "/v1/documents", headers={"authorization": f"Bearer {token}"}
            )
            if status == 200:
                latencies.append((time.monotonic() - begin) * 1000.0)
            else:
                probe_errors += 1
        except (OSError, http.client.HTTPException):
            probe_errors += 1
            probe.close()
            probe = http.client.HTTPConnection(host, port, timeout=30)
    elapsed = time.monotonic() - started
    with lock:
        flood_statuses = dict(statuses)
        flood_failures = failures[0]
    stop.set()
    for thread in threads:
        thread.join()
    latencies.sort()
    return latencies, probe_errors, flood_statuses, flood_failures, elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steno", required=True, help="path of the steno binary to measure")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--flood", type=int, default=8, help="concurrent flooding clients")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        process, host, port = start_server(options.steno, data_dir)
        try:
            connection = http.client.HTTPConnection(host, port, timeout=30)
            status, body = request(
                connection,
                "POST",
                "/v1/firms",
                {
                    "firm_name": "Flood Test LLP",
                    "admin_name": "Avery",
                    "admin_email": EMAIL,
                    "admin_password": PASSWORD,
                },
            )
            if status != 201:
                raise SystemExit(f"registration answered {status}: {body!r}")
            token = json.loads(body)["access_token"]
            print(f"steno: {options.steno}")
            print(
                f"probe: GET /v1/documents, one client back to back; flood: {options.flood} "
                f"concurrent login clients; {options.seconds:g} s per phase\n"
            )
            print("| phase | probe requests | p50 ms | p95 ms | p99 ms | max ms | probe errors | flood req/s | flood answers |")
            print("|---|---|---|---|---|---|---|---|---|")
            for name, flood in (
                ("idle", None),
                ("flood, one client, one account", "one"),
                ("flood, many clients and emails", "many"),
            ):
                latencies, probe_errors, statuses, flood_failures, elapsed = run_phase(
                    host, port, token, flood, options
                )
                total = sum(statuses.values())
                answers = [f"{count}× {status}" for status, count in sorted(statuses.items())]
                if flood_failures:
                    answers.append(f"{flood_failures}× failed")
                print(
                    f"| {name} | {len(latencies)} | {percentile(latencies, 0.5):.2f} | "
                    f"{percentile(latencies, 0.95):.2f} | {percentile(latencies, 0.99):.2f} | "
                    f"{(latencies[-1] if latencies else float('nan')):.2f} | {probe_errors} | "
                    f"{total / elapsed:.0f} | {', '.join(answers) or '—'} |"
                )
        finally:
            process.kill()
            process.wait()


if __name__ == "__main__":
    main()
