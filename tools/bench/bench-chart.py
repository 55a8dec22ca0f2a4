#!/usr/bin/env python3
"""Draws the benchmark figures as one SVG, from the benchmark scripts' own output.

Reads what tools/bench/bench-gateway.sh, tools/bench/bench-history.sh and
tools/bench/bench-peer.sh print (kapso-loadgen's summaries, the history ratio, the
wrk lines), saved to one or more files, and draws four panels: the gateway
against its targets, throughput and p99 beside the original service, bytes
written per event, and the rate against stored history. Each script's output
starts with its `machine:` line; where a file holds the output of one script
twice, the later one is drawn. Lines starting with `#` or `$` are ignored.

    python3 tools/bench/bench-chart.py docs/bench/results-2026-12-06.txt -o docs/performance.svg

Python 3 standard library only.
"""

import argparse
import html
import math
import os
import re
import sys

LOADGEN_HEAD = re.compile(
    r"^target (\S+) concurrency (\d+) batch (\d+) mix (\w+) traffic (\w+): (\d+) ok in ([\d.]+) s$"
)
THROUGHPUT = re.compile(r"^throughput\s+(\S+) deliveries/s\s+(\S+) events/s$")
LATENCY = re.compile(r"^latency\s+p50 (\S+) ms\s+p99 (\S+) ms\s+p999 (\S+) ms\s+max (\S+) ms$")
WRITTEN = re.compile(r"^written\s+(\S+): (\S+) MB, (\S+) KiB per event$")
WRK = re.compile(r"^(\S+)\s+(\S+) req/s\s+p99 (\S+)\s+non-2xx (\S+)$")
HISTORY_RUN = re.compile(r"^== (.*)$")
HOLDING = re.compile(r"store holding (\d+) events \(([^)]*)\)")

# What the gateway is meant to do on a 2-core machine with the load generator on it.
TARGET_SINGLE_PER_S = 10_000
TARGET_SINGLE_P99_MS = 15
TARGET_BATCH_EVENTS_PER_S = 50_000
TARGET_HISTORY_SHARE = 0.80


def number(text):
    """A figure as the tools print it; NaN (a figure not recorded) stays NaN."""
    return float(text)


def wrk_ms(text):
    """wrk's latency (`12.10ms`, `1.20s`, `850.00us`) in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        return math.nan
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def sections(lines):
    """Splits the lines at each script's `machine:` line."""
    current = None
    for line in lines:
        line = line.rstrip("\n")
        if line.startswith(("#", "$")):
            continue
        if line.startswith("machine:"):
            current = {"machine": line[len("machine:"):].strip(), "lines": []}
            yield current
        elif current is not None:
            current["lines"].append(line)


def loadgen_runs(lines):
    """kapso-loadgen summaries, each with the label of the `==` line before it, if any."""
    runs, label = [], None
    for line in lines:
        if m := HISTORY_RUN.match(line):
            label = m.group(1)
        elif m := LOADGEN_HEAD.match(line):
            runs.append({"label": label, "batch": int(m.group(3)), "traffic": m.group(5),
                         "written_kib": {}})
            label = None
        elif not runs:
            continue
        elif m := THROUGHPUT.match(line):
            runs[-1]["deliveries_per_s"] = number(m.group(1))
            runs[-1]["events_per_s"] = number(m.group(2))
        elif m := LATENCY.match(line):
            runs[-1]["p99_ms"] = number(m.group(2))
        elif m := WRITTEN.match(line):
            runs[-1]["written_kib"][m.group(1)] = number(m.group(3))
    return runs


def parse(paths):
    results = {}
    for path in paths:
        with open(path, encoding="utf-8") as file:
            for section in list(sections(file)):
                machine, lines = section["machine"], section["lines"]
                if "; mode:" in machine:
                    results["gateway"] = {"machine": machine, "runs": loadgen_runs(lines)}
                elif "; wrk " in machine:
                    servers = {}
                    for line in lines:
                        if m := WRK.match(line):
                            servers[m.group(1)] = (number(m.group(2)), wrk_ms(m.group(3)))
                    results["peer"] = {"machine": machine, "servers": servers}
                else:
                    results["history"] = {"machine": machine, "runs": loadgen_runs(lines)}
    return results


def written(run):
    """Bytes per event of the gateway's processes together (one process, or adapter + core)."""
    values = list(run["written_kib"].values())
    return sum(values) if values else math.nan


class Chart:
    WIDTH, LABEL_W, BAR_W, ROW_H = 800, 250, 380, 24

    def __init__(self):
        self.parts, self.y = [], 20

    def text(self, x, y, content, size=12, weight="normal", anchor="start", fill="#222"):
        self.parts.append(
            f'<text x="{x}" y="{y}" font-size="{size}" font-weight="{weight}" '
            f'text-anchor="{anchor}" fill="{fill}">{html.escape(content)}</text>')

    def title(self, title, note):
        self.y += 18
        self.text(10, self.y, title, size=14, weight="bold")
        self.y += 16
        self.text(10, self.y, note, size=11, fill="#666")
        self.y += 10

    def rows(self, rows, per_row=False):
        """rows: (label, value, shown, colour, target or None), on one scale or each on its own."""
        def known(*xs):
            return [x for x in xs if x is not None and not math.isnan(x)]

        panel_max = max(known(*(x for row in rows for x in (row[1], row[4]))), default=1) * 1.1
        for label, value, shown, colour, target in rows:
            top = self.y + 6
            row_max = max(known(value, target), default=1) * 1.15 if per_row else panel_max
            self.text(self.LABEL_W - 8, top + 13, label, anchor="end")
            target_x = None if target is None else self.LABEL_W + self.BAR_W * target / row_max
            if math.isnan(value):
                self.text(self.LABEL_W + 4, top + 13, "not recorded", fill="#999")
            else:
                width = self.BAR_W * value / row_max
                self.parts.append(f'<rect x="{self.LABEL_W}" y="{top}" width="{width:.1f}" '
                                  f'height="{self.ROW_H - 8}" fill="{colour}"/>')
                self.text(max(self.LABEL_W + width, target_x or 0) + 6, top + 13, shown)
            if target_x is not None:
                x = target_x
                self.parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 3}" '
                                  f'y2="{top + self.ROW_H - 5}" stroke="#c00" stroke-width="2" '
                                  f'stroke-dasharray="4 2"/>')
            self.y += self.ROW_H
        self.y += 6

    def svg(self):
        height = self.y + 30
        self.text(10, height - 10, "dashed red line: target", size=11, fill="#c00")
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.WIDTH}" height="{height}" '
                f'viewBox="0 0 {self.WIDTH} {height}" font-family="sans-serif">\n'
                f'<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(self.parts) + "\n</svg>\n")


GATEWAY, PEER, FULL = "#2a6fb0", "#999999", "#e08a2c"


def draw(results, sources):
    chart = Chart()
    chart.text(10, chart.y, "kapso-gateway benchmarks: " + ", ".join(sources), size=12, fill="#666")
    chart.y += 8
    if gateway := results.get("gateway"):
        runs = gateway["runs"]
        single = next((r for r in runs if r["batch"] == 1 and r["traffic"] == "Received"), None)
        batch = next((r for r in runs if r["batch"] > 1), None)
        chart.title("The gateway against its targets (bench-gateway.sh, 64 connections, durable)",
                    gateway["machine"])
        rows = []
        if single:
            rows.append(("single events, deliveries/s", single["deliveries_per_s"],
                         f'{single["deliveries_per_s"]:,.0f}/s (target {TARGET_SINGLE_PER_S:,}/s)',
                         GATEWAY, TARGET_SINGLE_PER_S))
            rows.append(("single events, p99", single["p99_ms"],
                         f'{single["p99_ms"]:.1f} ms (target under {TARGET_SINGLE_P99_MS} ms)',
                         GATEWAY, TARGET_SINGLE_P99_MS))
        if batch:
            rows.append((f'batches of {batch["batch"]}, events/s', batch["events_per_s"],
                         f'{batch["events_per_s"]:,.0f}/s (target {TARGET_BATCH_EVENTS_PER_S:,}/s)',
                         GATEWAY, TARGET_BATCH_EVENTS_PER_S))
        chart.rows(rows, per_row=True)

    if peer := results.get("peer"):
        servers = peer["servers"]
        names = [("gateway-durable", "gateway, durable", GATEWAY),
                 ("peer-in-memory", "original, in memory", PEER),
                 ("peer-durable", "original, durable", PEER)]
        present = [(key, label, colour) for key, label, colour in names if key in servers]
        chart.title("Beside the original FastAPI service (bench-peer.sh, wrk, same signed bodies)",
                    peer["machine"])
        chart.rows([(f"{label}, req/s", servers[key][0], f"{servers[key][0]:,.0f} req/s", colour, None)
                    for key, label, colour in present])
        chart.rows([(f"{label}, p99", servers[key][1], f"{servers[key][1]:.1f} ms", colour, None)
                    for key, label, colour in present])

    history = results.get("history")
    history_runs = history["runs"] if history else []
    if gateway or history_runs:
        rows = []
        for run in (gateway or {}).get("runs", []):
            what = "conversations" if run["traffic"] == "Conversation" else (
                "single events" if run["batch"] == 1 else f'batches of {run["batch"]}')
            kib = written(run)
            rows.append((what, kib, f"{kib:.1f} KiB", GATEWAY, None))
        full = next((r for r in history_runs if r["label"] and HOLDING.search(r["label"])), None)
        if full:
            m = HOLDING.search(full["label"])
            kib = written(full)
            rows.append((f"single events, {int(m.group(1)) / 1e6:.2f} M stored", kib,
                         f"{kib:.1f} KiB", FULL, None))
        chart.title("Bytes written to storage per event (/proc/PID/io write_bytes)",
                    "what the disk is asked to write; steadier than throughput across periods")
        chart.rows(rows)

    if history_runs:
        rows, empty_rates = [], []
        for run in history_runs:
            label = run["label"] or "run"
            m = HOLDING.search(label)
            if m:
                label = f"{int(m.group(1)) / 1e6:.2f} M events stored ({m.group(2)})"
            else:
                empty_rates.append(run["deliveries_per_s"])
            rows.append((label, run["deliveries_per_s"], f'{run["deliveries_per_s"]:,.0f}/s',
                         FULL if m else GATEWAY, None))
        target = None
        if empty_rates:
            target = TARGET_HISTORY_SHARE * sum(empty_rates) / len(empty_rates)
        rows = [(label, value, shown + (f" ({value / (target / TARGET_HISTORY_SHARE):.0%})"
                                        if colour == FULL and target else ""), colour,
                 target if colour == FULL else None)
                for label, value, shown, colour, _ in rows]
        chart.title("Rate against stored history (bench-history.sh, single events, deliveries/s)",
                    f'{history["machine"]}; target: 80% of the empty stores\' mean')
        chart.rows(rows)

    if len(chart.parts) == 1:  # the heading alone
        sys.exit("bench-chart: no benchmark output found in the files given")
    return chart.svg()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="saved output of the bench scripts")
    parser.add_argument("-o", "--output", help="SVG file to write (default: standard output)")
    args = parser.parse_args()
    svg = draw(parse(args.files), [os.path.basename(path) for path in args.files])
    if args.output:
        with open(args.output, "w", encoding="utf-8") as file:
            file.write(svg)
    else:
        sys.stdout.write(svg)


if __name__ == "__main__":
    main()
