#!/usr/bin/env python3
"""Where a proxied request spends its time inside each proxy of the router benchmark.

Runs COMMAND (normally the router benchmark), and while its fixed-rate rounds run, records the
system calls of the `opsd router` process and the nginx worker with `perf` (tracepoints
raw_syscalls:sys_enter/sys_exit, which need no hardware counters). Each request a proxy serves
is then cut into the stretches between its system calls, by the exit and entry times the kernel
recorded:

  wake -> request read       epoll_wait returned until the client's request was read
  request read -> forward     the proxy's own work on the request
  forward                     the send to Steno (the kernel's loopback path)
  forward -> answer read      Steno's work (and the proxy waiting for it)
  answer read -> write        the proxy's own work on the answer
  write                       the send to the client

and the median, p90 and p99 of each are printed per proxy. Requests are recognised by size: a
read of fewer than 1,000 bytes is a request, of 1,000 or more an answer (GET /login answers
about 2.5 KB), so it fits the benchmark's requests only.

Usage (as root, `perf` installed; release binaries built first):
  scripts/proxy_critical_path.py --after 13 --seconds 22 -- \\
      cargo bench -p opsd --bench router_bench -- --seconds 4 --rounds 1
--after: seconds from nginx's start to the start of the recording (the closed-loop rounds of
one 4 s round each take about 13 s); --seconds: how long to record (covers the fixed rounds).
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

STRETCHES = [
    "wake -> request read",
    "request read -> forward",
    "forward",
    "forward -> answer read",
    "answer read -> write",
    "write",
    "whole stay",
]
EPOLL = {232, 281}  # epoll_wait, epoll_pwait
READS = {0, 45}  # read, recvfrom
WRITES = {1, 20, 44}  # write, writev, sendto
ANSWER_BYTES = 1000


def find_process(pattern):
    """The pid of the first process whose command line starts with `pattern`, or None."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as file:
                command = file.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if pattern.search(command):
            return int(entry)
    return None


def wait_for(pattern, what, deadline):
    while time.time() < deadline:
        pid = find_process(pattern)
        if pid:
            return pid
        time.sleep(0.2)
    sys.exit(f"{what} did not start")


def stays(trace_lines):
    """Each request's stretches, per thread id."""
    found = {}
    state = {}
    last_enter = {}
    last_wake = {}
    for line in trace_lines:
        fields = line.split()
        if len(fields) < 4:
            continue
        thread, at = fields[0], float(fields[1].rstrip(":")) * 1e6
        number = re.search(r"NR (\d+)", line)
        if not number:
            continue
        number = int(number.group(1))
        request = state.setdefault(thread, {})
        if "sys_enter" in fields[2]:
            last_enter[thread] = at
            continue
        result = int(line.rsplit("=", 1)[1])
        if number in EPOLL:
            if "read" not in request:
                last_wake[thread] = at
        elif number in READS and 0 < result < ANSWER_BYTES and thread in last_wake:
            state[thread] = {"wake": last_wake[thread], "read": at}
        elif number in WRITES and "read" in request and "sent" not in request:
            request["sending"], request["sent"] = last_enter[thread], at
        elif number in READS and result >= ANSWER_BYTES and "sent" in request:
            request["answer"] = at
        elif number in WRITES and result >= ANSWER_BYTES and "answer" in request:
            found.setdefault(thread, []).append(
                (
                    request["read"] - request["wake"],
                    request["sending"] - request["read"],
                    request["sent"] - request["sending"],
                    request["answer"] - request["sent"],
                    last_enter[thread] - request["answer"],
                    at - last_enter[thread],
                    at - request["wake"],
                )
            )
            state[thread] = {}
    return found


def quantile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--after", type=float, default=13.0)
    parser.add_argument("--seconds", type=float, default=22.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    command = options.command[1:] if options.command[:1] == ["--"] else options.command
    if not command:
        parser.error("name the command to run (the router benchmark)")

    run = subprocess.Popen(command)
    deadline = time.time() + 900
    nginx = wait_for(re.compile(r"^nginx: worker"), "nginx", deadline)
    time.sleep(options.after)
    router = wait_for(re.compile(r"^\S*/opsd router "), "the opsd router", deadline)
    with tempfile.TemporaryDirectory() as scratch:
        data = os.path.join(scratch, "syscalls.data")
        subprocess.run(
            ["perf", "record", "-q", "-e", "raw_syscalls:sys_enter,raw_syscalls:sys_exit",
             "-p", f"{router},{nginx}", "-o", data, "--", "sleep", str(options.seconds)],
            check=False,  # it ends by a signal when the benchmark stops the proxies first
            stderr=subprocess.DEVNULL,
        )
        if not os.path.exists(data):
            sys.exit("perf recorded nothing (is perf installed, and are we allowed to trace?)")
        if run.wait() != 0:
            sys.exit("the command failed")
        trace = subprocess.run(
            ["perf", "script", "-i", data, "-F", "tid,time,event,trace"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.splitlines()
    names = {str(router): "opsd router", str(nginx): "nginx"}
    print("\n## Inside each proxy, per request at the fixed rate (µs, from system call times)\n")
    for thread, requests in sorted(stays(trace).items()):
        columns = list(zip(*requests))
        print(f"{names.get(thread, 'thread ' + thread)}: {len(requests)} requests")
        print("| stretch | median | p90 | p99 |\n|---|---|---|---|")
        for name, values in zip(STRETCHES, columns):
            print(
                f"| {name} | {statistics.median(values):.0f} | "
                f"{quantile(values, 0.9):.0f} | {quantile(values, 0.99):.0f} |"
            )
        print()


if __name__ == "__main__":
    main()
