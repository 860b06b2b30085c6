#!/usr/bin/env python3
"""Runs wsembed's benchmarks and prints one Markdown table per figure.

Called by `benches/run`, which builds the programs first; see
benches/README.md. Standard library only.

Every comparison runs its clients against one echo server process, one
after another in a rotating order, several times (interleaved), and
reports the median with the min and max, and the ratio to the baseline as
the median (min-max) of the per-round ratios. Every process is pinned with
taskset, in two placements: everything on CPU 0, and the client on CPU 0
with the server on CPU 1. The server's CPU use during each client's run
is read from /proc (schedstat) and reported, to show it is not the
bottleneck.
"""

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

FULL = dict(
    reps=5,
    rtt_count=20000,
    rtt_warmup=1000,
    stream_total=1 << 30,
    stream_msg=64 << 10,
    stream_window=16,
    scale_sockets=10000,
    # With deflate, each socket may hold ~300 KiB of compression contexts.
    scale_deflate_sockets=1000,
    scale_reps=3,
    py_count=5000,
    py_warmup=500,
    cg_counts=(1000, 2000),
    cg_stream_counts=(128, 384),
    strace_counts=(1000, 3000),
    # Figure 6 streams its gigabyte at tens of MB/s (compression is most of
    # the cost): three rounds take about 7 minutes.
    deflate_reps=3,
)
QUICK = dict(
    reps=1,
    rtt_count=200,
    rtt_warmup=20,
    stream_total=4 << 20,
    stream_msg=64 << 10,
    stream_window=16,
    scale_sockets=200,
    scale_deflate_sockets=50,
    scale_reps=1,
    py_count=100,
    py_warmup=10,
    cg_counts=(20, 60),
    cg_stream_counts=(8, 24),
    strace_counts=(20, 60),
    deflate_reps=1,
)

CLIENT_TIMEOUT = 600
HERE = os.path.dirname(os.path.abspath(__file__))


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


# ----- processes -------------------------------------------------------------


def pinned(cpu, argv):
    return ["taskset", "-c", str(cpu)] + list(argv)


class Server:
    """One echo server process (wsbench server, or `argv`: any program that
    prints PORT <n> and lives while its stdin is open), pinned to a CPU."""

    def __init__(self, wsbench, mode, cpu, argv=None):
        self.mode = mode
        self.proc = subprocess.Popen(
            pinned(cpu, argv or [wsbench, "server", "--mode", mode]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline().strip()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError("echo server did not start: {!r}".format(line))
        self.port = int(line.split()[1])

    def cpu_seconds(self):
        """CPU time of all the server's threads so far."""
        total = 0
        task_dir = "/proc/{}/task".format(self.proc.pid)
        for tid in os.listdir(task_dir):
            try:
                with open(os.path.join(task_dir, tid, "schedstat")) as f:
                    total += int(f.read().split()[0])
            except OSError:
                pass
        return total / 1e9

    def stop(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def run_client(argv, cpu, server, env=None, label=""):
    """Runs one client pinned to `cpu`; returns its JSON result with the
    server's CPU use over the client's life added (none without a
    server)."""
    s0, t0 = server.cpu_seconds() if server else 0, time.monotonic()
    proc = subprocess.run(
        pinned(cpu, argv),
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
        env=env,
    )
    t1, s1 = time.monotonic(), server.cpu_seconds() if server else float("nan")
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            "{} failed (exit {}): {}".format(
                label or " ".join(argv), proc.returncode, (proc.stderr or proc.stdout)[-800:]
            )
        )
    result = json.loads(lines[-1])
    result["server_cpu_util"] = (s1 - s0) / (t1 - t0)
    result["wall"] = t1 - t0
    return result


# ----- statistics and formatting ----------------------------------------------


def med(values):
    return statistics.median(values) if values else float("nan")


def fmt_num(v, kind):
    if v != v:  # NaN
        return "-"
    if kind == "rate":
        return "{:,.0f}".format(v)
    if kind == "gbps":
        return "{:.3f}".format(v)
    if kind == "mbps":
        return "{:.1f}".format(v)
    if kind == "ratio":
        return "{:.3f}".format(v)
    if kind == "pct":
        return "{:.0f}%".format(100 * v)
    if kind == "secs":
        return "{:.2f}".format(v)
    if kind == "kib":
        return "{:.1f}".format(v)
    return "{:g}".format(v)


def spread(values, kind):
    """median [min-max], or the single value."""
    if not values:
        return "-"
    if len(values) == 1:
        return fmt_num(values[0], kind)
    return "{} [{}–{}]".format(
        fmt_num(med(values), kind), fmt_num(min(values), kind), fmt_num(max(values), kind)
    )


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    for row in rows:
        out.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(out)


def rounds(reps, impls):
    """The order of clients in each round: rotated, so none always runs
    first or last."""
    for r in range(reps):
        k = r % len(impls)
        yield r, impls[k:] + impls[:k]


def ratios(results, impl, base, key):
    """Per-round ratios impl/base, for rounds where both ran."""
    out = []
    for r in sorted(set(results.get(impl, {})) & set(results.get(base, {}))):
        b = results[base][r][key]
        if b:
            out.append(results[impl][r][key] / b)
    return out


def column(results, impl, key):
    return [v[key] for _, v in sorted(results.get(impl, {}).items())]


# ----- the figures -------------------------------------------------------------


class Bench:
    def __init__(self, opts):
        self.o = opts
        self.p = QUICK.copy() if opts.quick else FULL.copy()
        if opts.reps:
            self.p["reps"] = opts.reps
            self.p["scale_reps"] = max(1, min(opts.reps, self.p["scale_reps"]))
            self.p["deflate_reps"] = opts.reps
        self.raw = []
        self.sections = []
        ncpu = os.cpu_count() or 1
        # (name, client CPU, server CPU)
        self.placements = [("1 CPU", 0, 0)]
        if ncpu >= 2:
            self.placements.append(("2 CPUs", 0, 1))
        self.notes = []

    def record(self, figure, placement, result):
        result = dict(result, figure=figure, placement=placement)
        self.raw.append(result)
        return result

    def section(self, text):
        self.sections.append(text)
        print(text + "\n", flush=True)

    def wsbench(self, *argv):
        return [self.o.wsbench] + [str(a) for a in argv]

    # 1 and 4b: round trips

    def rtt_impls(self):
        impls = [
            ("wsembed", "wsembed (C ABI)"),
            ("wsembed-dispatch", "wsembed, callbacks via a dispatcher on the main thread"),
            ("tungstenite", "tungstenite (blocking)"),
            ("tungstenite-epoll", "tungstenite on an epoll loop"),
        ]
        if self.o.lws:
            impls.append(("lws", "libwebsockets (C)"))
        return impls

    def rtt_argv(self, impl, port, size):
        p = self.p
        common = ["--port", port, "--size", size, "--count", p["rtt_count"], "--warmup", p["rtt_warmup"]]
        if impl == "lws":
            return [self.o.lws, "rtt"] + [str(a) for a in common]
        return self.wsbench("rtt", "--impl", impl, *common)

    def fig_rtt(self):
        impls = self.rtt_impls()
        names = [i for i, _ in impls]
        rows = []
        for placement, ccpu, scpu in self.placements:
            server = Server(self.o.wsbench, "ws", scpu)
            try:
                for size in (16, 1024):
                    results = {}
                    for r, order in rounds(self.p["reps"], names):
                        for impl in order:
                            log("rtt", placement, size, "round", r + 1, impl)
                            res = run_client(self.rtt_argv(impl, server.port, size), ccpu, server)
                            results.setdefault(impl, {})[r] = self.record("rtt", placement, res)
                    row = [placement, "{} B".format(size)]
                    row += [spread(column(results, i, "per_sec"), "rate") for i in names]
                    row.append("**" + spread(ratios(results, "wsembed", "tungstenite", "per_sec"), "ratio") + "**")
                    row.append(spread(ratios(results, "wsembed", "tungstenite-epoll", "per_sec"), "ratio"))
                    if "lws" in names:
                        row.append(spread(ratios(results, "wsembed", "lws", "per_sec"), "ratio"))
                    row.append(spread(ratios(results, "wsembed-dispatch", "wsembed", "per_sec"), "ratio"))
                    row.append(
                        " / ".join(
                            fmt_num(med(column(results, i, "server_cpu_util")), "pct") for i in names
                        )
                    )
                    row.append(
                        " / ".join(fmt_num(med(column(results, i, "cpu_util")), "pct") for i in names)
                    )
                    rows.append(row)
            finally:
                server.stop()
        header = ["placement", "size"] + ["{} rt/s".format(label) for _, label in impls]
        header.append("wsembed / tungstenite (target ≥ 0.95)")
        header.append("wsembed / tungstenite on epoll")
        if "lws" in names:
            header.append("wsembed / libwebsockets")
        header.append("dispatcher / IO-thread delivery")
        header += ["server CPU ({})".format(" / ".join(names)), "client CPU"]
        self.section(
            "### 1. Round trips per second, one socket, text, next message sent from the `message` callback\n\n"
            + table(header, rows)
            + "\n\nRound trips/s: median [min–max] of {} interleaved runs of {:,} timed round trips "
            "(after {:,} untimed). Ratio: median [min–max] of the per-round ratios. CPU: share of one CPU "
            "used during the run (client: whole process; server: the echo server).".format(
                self.p["reps"], self.p["rtt_count"], self.p["rtt_warmup"]
            )
        )

    # 2 and 4b: streaming

    def fig_stream(self):
        p = self.p
        count = p["stream_total"] // p["stream_msg"]
        impls = [("wsembed", "wsembed (C ABI)"), ("tungstenite", "tungstenite (blocking)"), ("tcp", "raw TCP echo")]
        if self.o.lws:
            impls.append(("lws", "libwebsockets (C)"))
        names = [i for i, _ in impls]
        rows = []
        for placement, ccpu, scpu in self.placements:
            ws_server = Server(self.o.wsbench, "ws", scpu)
            tcp_server = Server(self.o.wsbench, "tcp", scpu)
            try:
                results = {}
                for r, order in rounds(p["reps"], names):
                    for impl in order:
                        log("stream", placement, "round", r + 1, impl)
                        server = tcp_server if impl == "tcp" else ws_server
                        common = [
                            "--port", server.port, "--size", p["stream_msg"],
                            "--count", count, "--window", p["stream_window"], "--warmup", 0,
                        ]
                        if impl == "lws":
                            argv = [self.o.lws, "stream"] + [str(a) for a in common]
                        else:
                            argv = self.wsbench("stream", "--impl", impl, *common)
                        res = run_client(argv, ccpu, server)
                        results.setdefault(impl, {})[r] = self.record("stream", placement, res)
                row = [placement] + [spread(column(results, i, "gb_per_sec"), "gbps") for i in names]
                row.append("**" + spread(ratios(results, "wsembed", "tungstenite", "gb_per_sec"), "ratio") + "**")
                row.append(spread(ratios(results, "wsembed", "tcp", "gb_per_sec"), "ratio"))
                row.append(spread(ratios(results, "tungstenite", "tcp", "gb_per_sec"), "ratio"))
                if "lws" in names:
                    row.append(spread(ratios(results, "wsembed", "lws", "gb_per_sec"), "ratio"))
                row.append(" / ".join(fmt_num(med(column(results, i, "server_cpu_util")), "pct") for i in names))
                row.append(" / ".join(fmt_num(med(column(results, i, "cpu_util")), "pct") for i in names))
                rows.append(row)
            finally:
                ws_server.stop()
                tcp_server.stop()
        header = ["placement"] + ["{} GB/s".format(label) for _, label in impls]
        header += ["wsembed / tungstenite (target ≥ 0.95)", "wsembed / TCP", "tungstenite / TCP"]
        if "lws" in names:
            header.append("wsembed / libwebsockets")
        header += ["server CPU ({})".format(" / ".join(names)), "client CPU"]
        self.section(
            "### 2. Streaming: {} in {} KiB binary messages, window of {} in flight, echoed back\n\n".format(
                human_bytes(count * p["stream_msg"]), p["stream_msg"] >> 10, p["stream_window"]
            )
            + table(header, rows)
            + "\n\nGB/s: payload bytes echoed per second (10^9 B/s; each byte crosses loopback twice), "
            "median [min–max] of {} interleaved runs. Raw TCP: the same bytes through the same server "
            "program in `--mode tcp`, same window.".format(p["reps"])
        )

    # 3: scale

    def fig_scale(self):
        p = self.p
        n = p["scale_sockets"]
        rows = []
        for placement, ccpu, scpu in self.placements:
            server = Server(self.o.wsbench, "ws", scpu)
            try:
                runs = []
                for r in range(p["scale_reps"]):
                    log("scale", placement, "run", r + 1)
                    res = run_client(self.wsbench("scale", "--port", server.port, "--sockets", n), ccpu, server)
                    runs.append(self.record("scale", placement, res))
                    # Let the TIME_WAIT sockets of the last run settle.
                    time.sleep(0.5)
            finally:
                server.stop()
            col = lambda key: [x[key] for x in runs]
            rows.append(
                [
                    placement,
                    "{:,}".format(n),
                    spread(col("open_secs"), "secs"),
                    spread(col("open_per_sec"), "rate"),
                    "**" + spread(col("rss_per_socket_kib"), "kib") + "**",
                    spread(col("rss_per_socket_after_round_kib"), "kib"),
                    "{:g} → {:g}".format(med(col("threads_before")), med(col("threads"))),
                    spread(col("round_secs"), "secs"),
                    spread(col("round_msgs_per_sec"), "rate"),
                    "{:g}".format(sum(col("errors"))),
                ]
            )
        # The same with permessage-deflate agreed, fewer sockets (each holds
        # compression contexts after its round of 16 KiB of JSON).
        dn = p["scale_deflate_sockets"]
        deflate_rows = []
        for placement, ccpu, scpu in self.placements[:1]:
            server = Server(self.o.wsbench, "ws", scpu,
                            [self.o.wsbench, "server", "--mode", "ws", "--deflate", "1"])
            try:
                runs = []
                for r in range(p["scale_reps"]):
                    log("scale deflate", placement, "run", r + 1)
                    res = run_client(self.wsbench("scale", "--port", server.port, "--sockets", dn,
                                                  "--deflate", 1, "--size", 16384), ccpu, server)
                    runs.append(self.record("scale-deflate", placement, res))
                    time.sleep(0.5)
            finally:
                server.stop()
            col = lambda key: [x[key] for x in runs]
            deflate_rows.append([
                placement, "{:,}".format(dn),
                "**" + spread(col("rss_per_socket_kib"), "kib") + "**",
                "**" + spread(col("rss_per_socket_after_round_kib"), "kib") + "**",
                spread(col("round_secs"), "secs"), "{:g}".format(sum(col("errors"))),
            ])
        header = [
            "placement", "sockets", "open all (s)", "opens/s",
            "RSS per idle socket, KiB (target ≤ 64)", "RSS per socket after the round, KiB",
            "threads before → with all open", "round of one 16 B message each (s)", "echoes/s in the round", "errors",
        ]
        self.section(
            "### 3. Scale: {:,} concurrent sockets on the one IO thread\n\n".format(n)
            + table(header, rows)
            + "\n\nmedian [min–max] of {} runs. RSS per socket: growth of the client's VmRSS from before the "
            "first `ws_open` to all sockets open and idle, divided by the sockets. Threads: the client process "
            "before the first `ws_open` (main and the bench's watchdog) and with all sockets open: the "
            "difference is wsembed's (its IO thread; the two DNS threads start only for host names). "
            "The server is the same one-thread epoll echo server.".format(p["scale_reps"])
            + "\n\nWith permessage-deflate agreed (`ws_options_set_deflate`, context takeover both ways, "
            "the server `wsbench server --deflate 1`), the round being one 16 KiB JSON-like text message each:\n\n"
            + table(["placement", "sockets", "RSS per idle socket, KiB (target ≤ 64)",
                     "RSS per socket after the compressed round, KiB (target ≤ 400)",
                     "round (s)", "errors"], deflate_rows)
        )

    # 4: Python

    def fig_python(self):
        p = self.p
        styles = [
            ("wsembed-callback", "wsembed callbacks"),
            ("wsembed-blocking", "wsembed blocking"),
            ("wsembed-asyncio", "wsembed asyncio"),
            ("websocket-client", "websocket-client (blocking)"),
            ("websockets", "websockets (asyncio)"),
            # A reference, not a client: the loop's own socket, no library
            # and no checks, so what asyncio itself costs.
            ("asyncio-minimal", "minimal asyncio client (reference)"),
        ]
        header = ["placement", "size"] + ["{} rt/s".format(l) for _, l in styles] + [
            "best wsembed / websocket-client (target ≥ 1.2 at 16 B)",
            "best wsembed / faster of the two (target ≥ 2 at 1 KiB)",
            "server CPU",
        ]
        available = python_status(self.o)
        missing = {s for s, _ in styles if not available.get(s, False)}
        if all(not available.get(s) for s, _ in styles[:3]):
            reason = available.get("why", "binding not available")
            rows = [["all", "16 B, 1 KiB"] + ["not measured: {}".format(reason)] * 3 + ["-"] * 6]
            self.section("### 4. Python round trips per second\n\n" + table(header, rows))
            return
        names = [s for s, _ in styles if s not in missing]
        env = python_env(self.o)
        rows = []
        for placement, ccpu, scpu in self.placements:
            server = Server(self.o.wsbench, "ws", scpu)
            try:
                for size in (16, 1024):
                    results = {}
                    for r, order in rounds(p["reps"], names):
                        for style in order:
                            log("python", placement, size, "round", r + 1, style)
                            argv = [
                                sys.executable, os.path.join(HERE, "py_clients.py"), style,
                                str(server.port), str(size), str(p["py_count"]), str(p["py_warmup"]),
                            ]
                            res = run_client(argv, ccpu, server, env=env, label=style)
                            results.setdefault(style, {})[r] = self.record("python", placement, res)
                    row = [placement, "{} B".format(size)]
                    for s, _ in styles:
                        row.append(
                            spread(column(results, s, "per_sec"), "rate") if s in names else "not measured: missing"
                        )
                    # Per round: the best wsembed style against the others.
                    best, vs_wsc, vs_faster = {}, [], []
                    for r in range(p["reps"]):
                        ours = [results[s][r]["per_sec"] for s in names if s.startswith("wsembed") and r in results.get(s, {})]
                        theirs = {s: results[s][r]["per_sec"] for s in ("websocket-client", "websockets") if r in results.get(s, {})}
                        if ours and "websocket-client" in theirs:
                            vs_wsc.append(max(ours) / theirs["websocket-client"])
                        if ours and theirs:
                            vs_faster.append(max(ours) / max(theirs.values()))
                    row.append("**" + spread(vs_wsc, "ratio") + "**")
                    row.append("**" + spread(vs_faster, "ratio") + "**")
                    row.append(fmt_num(max(med(column(results, s, "server_cpu_util")) for s in names), "pct") + " (max)")
                    rows.append(row)
            finally:
                server.stop()
        self.section(
            "### 4. Python round trips per second (ctypes binding vs PyPI clients), one socket, text\n\n"
            + table(header, rows)
            + "\n\nmedian [min–max] of {} interleaved runs of {:,} timed round trips (after {:,}). Python {}; "
            "websocket-client {}, websockets {}. The wsembed styles: callbacks (send from the `message` "
            "callback on the IO thread), blocking (`wsembed.connect`, `send`/`recv`), asyncio "
            "(`wsembed.aio.connect`). Minimal asyncio client: a reference, not a "
            "client to use: an asyncio Protocol on the loop's own socket, in pure Python, speaking only "
            "what the echo needs (`py_clients.py asyncio_minimal`), for what asyncio itself costs.".format(
                p["reps"], p["py_count"], p["py_warmup"], sys.version.split()[0],
                available.get("websocket-client-version", "?"), available.get("websockets-version", "?"),
            )
        )

    # 5: instructions per message

    CG_IMPLS = [
        ("wsembed", [], "wsembed (C ABI)"),
        ("tungstenite", [], "tungstenite, default config (128 KiB read buffer)"),
        ("tungstenite-rb16k", ["--read-buffer", "16384"], "tungstenite, 16 KiB read buffer (wsembed's setting)"),
    ]

    def profile_one(self, server, tmp, kind, size, name, extra, counts, strace_counts):
        """Per-message cost of one client: callgrind Ir (total, memset/memcpy
        part, by function), allocations and syscalls, each by the
        difference of two runs."""
        impl = "tungstenite" if name.startswith("tungstenite") else name
        ccpu = self.placements[0][1]
        n1, n2 = counts

        def argv(n, warmup):
            a = ["--impl", impl, "--port", server.port, "--size", size, "--count", n, "--warmup", warmup]
            if kind == "stream":
                a += ["--window", self.p["stream_window"]]
            return [self.o.wsbench, kind] + [str(x) for x in a] + list(extra)

        outs = []
        for n in counts:
            log("callgrind", kind, size, name, n)
            out = os.path.join(tmp, "cg.{}.{}.{}.{}".format(kind, name, size, n))
            run_client(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + argv(n, 0),
                       ccpu, server, label="callgrind " + name)
            outs.append(out)
        total = (callgrind_total(outs[1]) - callgrind_total(outs[0])) / (n2 - n1)
        fns = diff_functions(outs, n2 - n1, inclusive=False)
        incl = diff_functions(outs, n2 - n1, inclusive=True)
        rep = sum(v for k, v in fns.items() if is_rep_string(k))
        # Allocations over whole runs (from the first send), by the same
        # difference, so a window of messages in flight cancels out.
        a1, a2 = (run_client(argv(n, 0) + ["--count-allocs", "1"], ccpu, server) for n in counts)
        allocs = {
            key: (a2[key] * n2 - a1[key] * n1) / (n2 - n1) for key in ("allocs_per_msg", "alloc_bytes_per_msg")
        }
        calls, mix = syscalls_per_message(lambda n: argv(n, 0), strace_counts, tmp, "{}.{}.{}".format(kind, name, size))
        return dict(total=total, rep=rep, fns=fns, incl=incl, allocs=allocs, calls=calls, mix=mix)

    def fig_callgrind(self):
        p = self.p
        if not shutil.which("valgrind"):
            self.section("### 5. Instructions per message\n\nnot measured: valgrind is not installed")
            return
        tmp = tempfile.mkdtemp(prefix="wsbench-cg-")
        server = Server(self.o.wsbench, "ws", self.placements[-1][2])
        runs = []  # (kind, size, name, label, result)
        try:
            for kind, size, counts, strace_counts in (
                ("rtt", 16, p["cg_counts"], p["strace_counts"]),
                ("rtt", 1024, p["cg_counts"], p["strace_counts"]),
                ("stream", p["stream_msg"], p["cg_stream_counts"], p["cg_stream_counts"]),
            ):
                for name, extra, label in self.CG_IMPLS:
                    res = self.profile_one(server, tmp, kind, size, name, extra, counts, strace_counts)
                    runs.append((kind, size, name, label, res))
        finally:
            server.stop()
            if not self.o.keep:
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                log("callgrind and strace files kept in", tmp)
        rows = []
        for kind, size, name, label, r in runs:
            same = {n: x for k, sz, n, _, x in runs if k == kind and sz == size}
            other = lambda x: x["total"] - x["rep"]
            rows.append([
                "round trip, {} B text".format(size) if kind == "rtt" else "streaming, {} KiB binary".format(size >> 10),
                label,
                "{:,.0f}".format(r["total"]),
                "{:,.0f}".format(r["rep"]),
                "**{:,.0f}**".format(other(r)),
                "{:.2f} / {:.2f}".format(other(r) / other(same["tungstenite"]), other(r) / other(same["tungstenite-rb16k"])),
                "{:.2f} ({:,.0f} B)".format(r["allocs"]["allocs_per_msg"], r["allocs"]["alloc_bytes_per_msg"]),
                "{:.2f}".format(r["calls"]),
                fmt_calls(r["mix"]),
            ])
        header = [
            "per message", "client", "Ir", "of which memset/memcpy (≈ bytes)", "Ir without memset/memcpy",
            "ratio of that to tungstenite default / 16 KiB", "allocations (bytes)", "syscalls", "syscall mix",
        ]
        n1, n2 = p["cg_counts"]
        s1, s2 = p["cg_stream_counts"]
        text = (
            "### 5. Instructions, allocations and syscalls per message (callgrind, strace), client process\n\n"
            + table(header, rows)
            + "\n\nPer round trip (one message each way) or per streamed message. Ir: instructions counted by "
            "`valgrind --tool=callgrind` over all the client's threads, (Ir(N2) − Ir(N1)) / (N2 − N1) with "
            "N = {:,} and {:,} round trips ({:,} and {:,} streamed messages), so start-up cancels out; user space "
            "only (the kernel's side of a syscall is not counted). valgrind counts each byte of a `rep stosb` / "
            "`rep movsb` as one instruction, so glibc's memset/memcpy are shown apart: that column is about the "
            "bytes zeroed or copied, which cost far less time than as many ordinary instructions. Allocations: a "
            "counting global allocator in the bench program (wsembed is linked in, so its IO thread's allocations "
            "count). Syscalls: `strace -f -c`, same difference method. Every client copies the payload once per "
            "send (wsembed in `ws_send_*`, the others into an owned message).".format(n1, n2, s1, s2)
        )
        per_fn = {n: x["fns"] for k, sz, n, _, x in runs if k == "rtt" and sz == 16}
        incl = {n: x["incl"] for k, sz, n, _, x in runs if k == "rtt" and sz == 16}
        if per_fn:
            text += "\n\n" + overhead_table(per_fn, incl)
        self.section(text)

    # 6: permessage-deflate

    def fig_deflate(self):
        p = self.p
        count = p["stream_total"] // p["stream_msg"]
        version = python_module_version("websockets.asyncio.server", "websockets")
        peers = [("passthrough", "`wsbench server --deflate 1` (echoes the compressed frames verbatim)")]
        peers.append(("python", "Python websockets{} (`compression=\"deflate\"`)".format(" " + version if version else "")))
        names = [n for n, _ in peers if n != "python" or version] + ["codec"]
        client = [
            "stream", "--impl", "wsembed", "--size", p["stream_msg"], "--count", count,
            "--window", p["stream_window"], "--warmup", 0, "--deflate", 1, "--data", "json", "--binary", 0,
            "--max-secs", CLIENT_TIMEOUT,
        ]
        codec = self.wsbench("codec", "--size", p["stream_msg"], "--count", count, "--level", 6, "--window-bits", 15)
        rows, codec_runs = [], []
        for placement, ccpu, scpu in self.placements:
            servers = {}
            try:
                servers["passthrough"] = Server(self.o.wsbench, "ws", scpu, [self.o.wsbench, "server", "--mode", "ws", "--deflate", "1"])
                if "python" in names:
                    servers["python"] = Server(None, "python", scpu, [sys.executable, os.path.join(HERE, "deflate_peer.py")])
                results = {}
                for r, order in rounds(p["deflate_reps"], names):
                    for impl in order:
                        log("deflate", placement, "round", r + 1, impl)
                        if impl == "codec":
                            # The codec has no peer: always one process on the client's CPU.
                            res = run_client(codec, ccpu, None, label="codec")
                            codec_runs.append(res)
                        else:
                            res = run_client(self.wsbench(*client[:3], "--port", servers[impl].port, *client[3:]),
                                             ccpu, servers[impl], label="deflate " + impl)
                            if res["extensions"] == "":
                                raise RuntimeError("{} declined permessage-deflate".format(impl))
                        res["mb_per_sec"] = res.get("mb_per_sec", res.get("gb_per_sec", 0) * 1000)
                        # What other load on the CPU takes from a run slows
                        # it but does not change its CPU time per byte.
                        res["mb_per_cpu_sec"] = res["mb_per_sec"] / res["cpu_util"] if res["cpu_util"] else float("nan")
                        results.setdefault(impl, {})[r] = self.record("deflate", placement, res)
            finally:
                for server in servers.values():
                    server.stop()
            for name, label in peers:
                if name not in names:
                    rows.append([placement, label] + ["not measured: websockets is not installed"] + ["-"] * 8)
                    continue
                runs = column(results, name, "mb_per_sec")
                wire = lambda key: "{:,.1f} MB ({:.3f})".format(
                    med(column(results, name, key)) / 1e6,
                    med([x[key] / x["payload_bytes"] for x in results[name].values()]),
                )
                ratio = spread(ratios(results, name, "codec", "mb_per_sec"), "ratio")
                per_cpu = spread(ratios(results, name, "codec", "mb_per_cpu_sec"), "ratio")
                rows.append([
                    placement, label, "`{}`".format(results[name][0]["extensions"]),
                    spread(runs, "mbps"), wire("wire_out_bytes"), wire("wire_in_bytes"),
                    spread(column(results, "codec", "mb_per_sec"), "mbps"),
                    "**" + ratio + "**" if name == "passthrough" else ratio,
                    per_cpu,
                    fmt_num(med(column(results, name, "server_cpu_util")), "pct"),
                    fmt_num(med(column(results, name, "cpu_util")), "pct"),
                ])
        header = [
            "placement", "peer", "extensions agreed", "payload MB/s", "client → server on the wire (wire / payload)",
            "server → client on the wire (wire / payload)", "codec alone MB/s (one process, CPU 0)",
            "wsembed / codec alone (target ≥ 0.8)", "the same per CPU-second of the client", "server CPU", "client CPU",
        ]
        codec_col = lambda key: [x[key] for x in codec_runs]
        # What the level costs: the codec alone at each level, on CPU 0,
        # with an eighth of the data (it is one process, no peer).
        level_rows = []
        level_count = max(count // 8, 1)
        for level in (0, 1, 6, 9):
            log("deflate level", level)
            runs = [
                run_client(
                    self.wsbench("codec", "--size", p["stream_msg"], "--count", level_count, "--level", level,
                                 "--window-bits", 15),
                    self.placements[0][1], None, label="codec level {}".format(level),
                )
                for _ in range(min(p["deflate_reps"], 3))
            ]
            level_rows.append([
                str(level),
                "{:.3f}".format(med([x["wire_out_bytes"] / x["payload_bytes"] for x in runs])),
                spread([x["compress_mb_per_sec"] for x in runs], "mbps"),
                spread([x["inflate_mb_per_sec"] for x in runs], "mbps"),
            ])
        self.section(
            "### 6. Compression: permessage-deflate streaming, {} of JSON-like text in {} KiB text messages, "
            "window of {} in flight, echoed back\n\n".format(
                human_bytes(count * p["stream_msg"]), p["stream_msg"] >> 10, p["stream_window"]
            )
            + table(header, rows)
            + "\n\nwsembed (C ABI) with `ws_options_set_deflate(o, true)` and the default level 6, sending from "
            "its `message` callback as in figure 2, so compressing (inside `ws_send_text`) and inflating both run "
            "on its IO thread; every echo compared byte for byte with what was sent. MB/s: payload bytes echoed per second (10^6 B/s), median "
            "[min–max] of {} interleaved rounds. On the wire: TCP payload bytes of the client's connection "
            "(TCP_INFO, opening handshake excluded), median. Codec alone (`wsbench codec`): the same messages "
            "compressed and inflated by flate2 (zlib-rs) in one thread, level 6, 15-bit windows, raw deflate, "
            "sync flush, context kept: {} MB/s, of which compressing alone runs at {} MB/s and inflating at "
            "{} MB/s; it makes {:.3f} compressed bytes per payload byte. Ratio: median [min–max] of the per-round "
            "ratios to the codec run of the same round; the target is for the passthrough peer, which leaves "
            "wsembed's own cost; against the Python peer (its own zlib, 12-bit windows) it says how far that "
            "peer holds the stream back. Per CPU-second: the same ratio of payload per second of the process's "
            "CPU time (client: whole process), which time taken by other load on the CPU leaves unchanged.".format(
                p["deflate_reps"], spread(codec_col("mb_per_sec"), "mbps"), spread(codec_col("compress_mb_per_sec"), "mbps"),
                spread(codec_col("inflate_mb_per_sec"), "mbps"),
                med([x["wire_out_bytes"] / x["payload_bytes"] for x in codec_runs]),
            )
            + "\n\nWhat the level (`ws_options_set_deflate_level`) costs on this data: the codec alone, "
            "one process on CPU 0, {} of the same messages per run, median [min–max] of {} runs:\n\n".format(
                human_bytes(level_count * p["stream_msg"]), min(p["deflate_reps"], 3)
            )
            + table(["level", "compressed / payload", "compress MB/s", "inflate MB/s"], level_rows)
        )


def is_rep_string(name):
    return bool(re.match(r"__(memset|memcpy|memmove)\w*", name))


def human_bytes(n):
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return "{} {}".format(n // size, unit)
    return "{} B".format(n)


# ----- callgrind and strace helpers --------------------------------------------


def callgrind_total(path):
    with open(path) as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError("no totals in " + path)


LINE = re.compile(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*?)\s*$")


def annotate(path, inclusive):
    argv = ["callgrind_annotate", "--threshold=100", "--auto=no", "--tree=none",
            "--inclusive=" + ("yes" if inclusive else "no"), path]
    text = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    costs, started = {}, False
    for line in text.splitlines():
        if line.startswith("Ir") and "file:function" in line:
            started = True
            continue
        if not started or line.startswith("-"):
            continue
        if not line.strip():
            break
        m = LINE.match(line)
        if not m:
            continue
        name = normalize(m.group(2))
        cost = int(m.group(1).replace(",", ""))
        # Self cost is split over the files a function was inlined from:
        # add. Inclusive cost is repeated for each: keep the largest.
        costs[name] = max(costs.get(name, 0), cost) if inclusive else costs.get(name, 0) + cost
    return costs


def normalize(name):
    """The function's name without its file, object file and generic
    arguments, so that one function, inlined into several files or
    instantiated for two stream types, counts as one."""
    name = re.sub(r"\s*\[[^\]]*\]$", "", name)
    m = re.match(r"^[^:]*:(?!:)(.*)$", name)
    if m:
        name = m.group(1)
    # Drop generic argument lists (a '<' right after a name); keep the
    # brackets of a qualified path such as <T as Trait>::f, without its
    # generics.
    out, stack = [], []
    for i, ch in enumerate(name):
        if ch == "<":
            generic = i > 0 and (name[i - 1].isalnum() or name[i - 1] in "_>")
            if stack and stack[-1]:
                stack.append(True)
                continue
            stack.append(generic)
            out.append("<…>" if generic else "<")
            continue
        if ch == ">" and stack:
            if not stack.pop():
                out.append(">")
            continue
        if not (stack and stack[-1]):
            out.append(ch)
    return "".join(out)


def diff_functions(outs, n, inclusive):
    a, b = annotate(outs[0], inclusive), annotate(outs[1], inclusive)
    return {k: (b.get(k, 0) - a.get(k, 0)) / n for k in set(a) | set(b)}


def overhead_table(per_fn, incl):
    ws, tg = per_fn["wsembed"], per_fn["tungstenite-rb16k"]
    diffs = sorted(((ws.get(k, 0) - tg.get(k, 0), k) for k in set(ws) | set(tg)), reverse=True)
    rows = []
    for d, k in diffs[:20]:
        if d < 5:
            break
        rows.append([short(k), "{:,.0f}".format(ws.get(k, 0)), "{:,.0f}".format(tg.get(k, 0)), "{:+,.0f}".format(d)])
    text = (
        "Where wsembed's extra instructions go, 16 B round trip: self cost per round trip by function, wsembed "
        "vs tungstenite with the same 16 KiB read buffer, largest differences first (functions matched by name "
        "without file or generic arguments; memset counts bytes):\n\n"
    )
    text += table(["function", "wsembed", "tungstenite (16 KiB)", "difference"], rows)
    wi = incl.get("wsembed", {})
    picks = sorted(
        ((v, k) for k, v in wi.items() if k.startswith(("wsembed::", "<wsembed::")) and v >= 50),
        reverse=True,
    )[:14]
    if picks:
        text += "\n\nwsembed's functions on the round-trip path, inclusive cost (Ir per round trip, callees included):\n\n"
        text += table(["function", "inclusive Ir"], [[short(k), "{:,.0f}".format(v)] for v, k in picks])
    return text


def short(name):
    name = name.replace("/rustc/", "rustc:/")
    return "`" + (name if len(name) < 110 else name[:107] + "…") + "`"


def syscalls_per_message(argv_for, counts, tmp, name):
    """(syscalls per message, {name: per message}) by `strace -f -c` on two
    runs, or (nan, {}) without strace. argv_for(n) is the client command."""
    if not shutil.which("strace"):
        return float("nan"), {}
    tables = []
    for n in counts:
        out = os.path.join(tmp, "strace.{}.{}".format(name, n))
        argv = ["strace", "-f", "-c", "-o", out] + argv_for(n)
        subprocess.run(pinned(0, argv), capture_output=True, text=True, timeout=CLIENT_TIMEOUT, check=True)
        calls = {}
        with open(out) as f:
            for line in f:
                parts = line.split()
                # % time, seconds, usecs/call, calls, [errors], syscall
                if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                    calls[parts[-1]] = int(parts[3])
        tables.append(calls)
    d = counts[1] - counts[0]
    names = set(tables[0]) | set(tables[1])
    per = {k: (tables[1].get(k, 0) - tables[0].get(k, 0)) / d for k in names}
    per = {k: v for k, v in per.items() if v >= 0.02}
    return sum(per.values()), per


def fmt_calls(per):
    return ", ".join("{} {:.2f}".format(k, v) for k, v in sorted(per.items(), key=lambda kv: -kv[1])) or "-"


# ----- Python ------------------------------------------------------------------


def python_env(opts):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [opts.python_path, env.get("PYTHONPATH")]))
    if opts.library:
        env["WSEMBED_LIBRARY"] = opts.library
    return env


def python_status(opts):
    """Which Python clients import here."""
    env = python_env(opts)
    status = {}
    probe = (
        "import importlib, json, sys\n"
        "out = {}\n"
        "for name, mod in [('wsembed', 'wsembed'), ('aio', 'wsembed.aio'), ('websocket-client', 'websocket'), ('websockets', 'websockets.asyncio.client')]:\n"
        "    try:\n"
        "        m = importlib.import_module(mod); out[name] = True\n"
        "    except Exception as e:\n"
        "        out[name] = False; out[name + '-error'] = repr(e)[:200]\n"
        "try:\n"
        "    import websocket; out['websocket-client-version'] = websocket.__version__\n"
        "except Exception: pass\n"
        "try:\n"
        "    import websockets; out['websockets-version'] = websockets.__version__\n"
        "except Exception: pass\n"
        "print(json.dumps(out))\n"
    )
    if not os.path.isdir(os.path.join(opts.python_path or "", "wsembed")):
        status["why"] = "binding not available (no bindings/python/wsembed)"
        got = {}
    else:
        proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
        try:
            got = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            got = {}
        if not got.get("wsembed"):
            status["why"] = "binding not available ({})".format(got.get("wsembed-error", proc.stderr[-200:]))
    status["wsembed-callback"] = bool(got.get("wsembed"))
    status["wsembed-blocking"] = bool(got.get("wsembed"))
    status["wsembed-asyncio"] = bool(got.get("wsembed") and got.get("aio"))
    status["websocket-client"] = bool(got.get("websocket-client"))
    status["websockets"] = bool(got.get("websockets"))
    # The standard library only.
    status["asyncio-minimal"] = True
    for k in ("websocket-client-version", "websockets-version"):
        if k in got:
            status[k] = got[k]
    return status


def python_module_version(module, package):
    """The version of `package` if `module` imports, else None."""
    probe = "import importlib, sys; importlib.import_module(sys.argv[1]); import {} as m; print(m.__version__)".format(package)
    proc = subprocess.run([sys.executable, "-c", probe, module], capture_output=True, text=True, timeout=60)
    return proc.stdout.strip() if proc.returncode == 0 else None


# ----- main ----------------------------------------------------------------------


def machine_state():
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    return load


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wsbench", required=True)
    ap.add_argument("--lws", default="")
    ap.add_argument("--library", default="", help="libwsembed.so for the Python binding")
    ap.add_argument("--python-path", default="", help="directory holding the wsembed Python package")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=0)
    ap.add_argument("--only", default="", help="comma list of: rtt,stream,scale,python,callgrind,deflate")
    ap.add_argument("--results", default="", help="write every run's raw JSON here")
    ap.add_argument("--keep", action="store_true", help="keep callgrind and strace files")
    ap.add_argument("--note", action="append", default=[], help="a line to print under the title")
    opts = ap.parse_args()

    bench = Bench(opts)
    figures = [
        ("rtt", bench.fig_rtt),
        ("stream", bench.fig_stream),
        ("scale", bench.fig_scale),
        ("python", bench.fig_python),
        ("callgrind", bench.fig_callgrind),
        ("deflate", bench.fig_deflate),
    ]
    only = set(filter(None, opts.only.split(",")))
    unknown = only - {name for name, _ in figures}
    if unknown:
        ap.error("unknown figure(s): " + ", ".join(sorted(unknown)))

    start = time.monotonic()
    load_before = machine_state()
    print("## wsembed benchmarks{}\n".format(" (--quick: tiny sizes, one run; not figures)" if opts.quick else ""))
    for line in opts.note:
        print(line + "  ")
    print(
        "Load average before: {}. Placements: {}.\n".format(
            load_before, "; ".join("{}: client on CPU {}, server on CPU {}".format(n, c, s) for n, c, s in bench.placements)
        ),
        flush=True,
    )
    failed = []
    for name, fn in figures:
        if only and name not in only:
            continue
        try:
            fn()
        except Exception as e:  # a broken figure must not hide the others
            failed.append(name)
            bench.section("### {}\n\nFAILED: {}".format(name, e))
    print(
        "Load average after: {}. Total time {:.0f} s.".format(machine_state(), time.monotonic() - start),
        flush=True,
    )
    if opts.results:
        with open(opts.results, "w") as f:
            for r in bench.raw:
                f.write(json.dumps(r) + "\n")
        log("raw results:", opts.results)
    if failed:
        log("failed figures:", ", ".join(failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
