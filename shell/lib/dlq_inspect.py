#!/usr/bin/env python3
"""Summarises and prints the stream-worker's dead letters (used by shell/dlq-inspect.sh).

Usage: dlq_inspect.py DLQ_DIR [--show N] [--values] [--max-chars N] [--export FILE]
                              [--since YYYY-MM-DD] [--stage decode|convert]

DLQ_DIR is an output folder's _dlq/ (docs/OUTPUT.md#dead-letters): files
dt=YYYY-MM-DD/<topic>+<partition>+<first>+<last>.jsonl[.gz|.zst], one JSON object per line
with stage, error, topic, partition, offset, kafkaTimestampMs, failedAtMs, key, value (the
last two base64). Prints a summary (by stage and error, by topic and partition, by day),
then the newest N records (metadata; with --values also the decoded key and value). --export
writes key<TAB>value lines for reprocessing (md/RUNBOOK_STREAM_WORKER.md#reprocess-dead-letters).
Exit code 0, or 1 when a file cannot be read (named, with the reason).
"""

import argparse
import base64
import collections
import datetime
import gzip
import io
import json
import os
import re
import shutil
import subprocess
import sys

NAME = re.compile(r"^(?P<topic>.+)\+(?P<partition>\d+)\+(?P<first>\d+)\+(?P<last>\d+)\.jsonl(\.gz|\.zst)?$")


def open_text(path):
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    if path.endswith(".zst"):
        try:
            import zstandard  # type: ignore

            raw = zstandard.ZstdDecompressor().stream_reader(open(path, "rb"))
            return io.TextIOWrapper(raw, encoding="utf-8", errors="replace")
        except ImportError:
            if not shutil.which("zstd"):
                raise OSError("needs the zstd command or the Python module zstandard to read .zst files")
            out = subprocess.run(["zstd", "-qdc", "--", path], check=True, capture_output=True).stdout
            return io.StringIO(out.decode("utf-8", errors="replace"))
    return open(path, encoding="utf-8", errors="replace")


def ms_to_utc(ms):
    if ms is None:
        return "-"
    try:
        return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"
    except (OverflowError, OSError, ValueError, TypeError):
        return str(ms)


def b64_text(v):
    if v is None:
        return None
    try:
        return base64.b64decode(v).decode("utf-8", errors="replace")
    except (ValueError, TypeError):
        return "<not base64>"


def clip(s, n):
    if s is None:
        return "null"
    s = s.replace("\n", "\\n")
    return s if n <= 0 or len(s) <= n else s[:n] + f"… ({len(s)} chars)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--show", type=int, default=10)
    ap.add_argument("--values", action="store_true")
    ap.add_argument("--max-chars", type=int, default=300)
    ap.add_argument("--export")
    ap.add_argument("--since")
    ap.add_argument("--stage", choices=["decode", "convert"])
    a = ap.parse_args()

    files = []
    if os.path.isdir(a.dir):
        for root, _dirs, names in os.walk(a.dir):
            for n in names:
                if ".jsonl" in n:
                    files.append(os.path.join(root, n))
    files.sort()

    by_error = collections.Counter()
    by_tp = {}
    by_day = collections.Counter()
    records = []
    unreadable = []
    bad_lines = 0
    used_files = 0
    for path in files:
        rel = os.path.relpath(path, a.dir)
        day_dir = os.path.basename(os.path.dirname(path))
        day = day_dir[3:] if day_dir.startswith("dt=") else "?"
        if a.since and day != "?" and day < a.since:
            continue
        if not NAME.match(os.path.basename(path)):
            unreadable.append(f"{rel}: not a dead-letter file name (<topic>+<partition>+<first>+<last>.jsonl[.gz|.zst])")
            continue
        try:
            with open_text(path) as f:
                n_in_file = 0
                for lineno, line in enumerate(f, 1):
                    line = line.strip()
                    if not line:
                        continue
                    try:
                        d = json.loads(line)
                        if not isinstance(d, dict) or "stage" not in d or "error" not in d:
                            raise ValueError("not a dead-letter record")
                    except ValueError as e:
                        bad_lines += 1
                        if bad_lines <= 5:
                            print(f"dlq-inspect: {rel}:{lineno}: {e}", file=sys.stderr)
                        continue
                    if a.stage and d.get("stage") != a.stage:
                        continue
                    n_in_file += 1
                    d["_file"] = rel
                    records.append(d)
                    by_error[(d.get("stage"), d.get("error"))] += 1
                    tp = (d.get("topic"), d.get("partition"))
                    lo, hi, cnt = by_tp.get(tp, (None, None, 0))
                    off = d.get("offset")
                    if isinstance(off, int):
                        lo = off if lo is None else min(lo, off)
                        hi = off if hi is None else max(hi, off)
                    by_tp[tp] = (lo, hi, cnt + 1)
                    by_day[day] += 1
                used_files += 1 if n_in_file else 0
        except (OSError, EOFError, subprocess.CalledProcessError) as e:
            unreadable.append(f"{rel}: {e}")

    if not records:
        print(f"no dead letters in {a.dir}" + (f" since {a.since}" if a.since else "") + (f" of stage {a.stage}" if a.stage else ""))
    else:
        days = sorted(by_day)
        print(f"{len(records):,} dead letter(s) in {used_files} file(s), days {days[0]} .. {days[-1]}")
        print()
        print("   count  stage    error")
        for (stage, error), n in by_error.most_common():
            print(f"{n:8,}  {str(stage):<8} {error}")
        print()
        print("   count  topic / partition: offsets")
        for (topic, part), (lo, hi, n) in sorted(by_tp.items(), key=lambda kv: (str(kv[0][0]), kv[0][1] or 0)):
            print(f"{n:8,}  {topic} / {part}: {lo} .. {hi}")
        print()
        print("   count  day")
        for day in days:
            print(f"{by_day[day]:8,}  {day}")
        if a.show > 0:
            newest = sorted(records, key=lambda d: (d.get("failedAtMs") or 0, d.get("offset") or 0))[-a.show:]
            print()
            print(f"newest {len(newest)}:" + ("" if a.values else " (add --values to see the keys and values)"))
            for d in newest:
                print(f"- failed {ms_to_utc(d.get('failedAtMs'))}  {d.get('topic')}/{d.get('partition')}@{d.get('offset')}  "
                      f"{d.get('stage')}: {d.get('error')}  ({d['_file']})")
                if a.values:
                    print(f"    key:   {clip(b64_text(d.get('key')), a.max_chars)}")
                    print(f"    value: {clip(b64_text(d.get('value')), a.max_chars)}")

    if a.export:
        written = 0
        with open(a.export, "w", encoding="utf-8") as out:
            for d in records:
                if d.get("value") is None:
                    continue
                key = b64_text(d.get("key")) or ""
                value = b64_text(d.get("value"))
                try:
                    value = json.dumps(json.loads(value), ensure_ascii=False)
                except ValueError:
                    value = value.replace("\n", " ")
                out.write(f"{key}\t{value}\n")
                written += 1
        print(f"\nexported {written} record(s) as key<TAB>value lines to {a.export} "
              "(md/RUNBOOK_STREAM_WORKER.md#reprocess-dead-letters)")

    if bad_lines:
        print(f"dlq-inspect: {bad_lines} line(s) were not dead-letter records", file=sys.stderr)
    for u in unreadable:
        print(f"dlq-inspect: cannot read {u}", file=sys.stderr)
    return 1 if unreadable else 0


if __name__ == "__main__":
    sys.exit(main())
