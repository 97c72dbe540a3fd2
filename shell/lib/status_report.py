#!/usr/bin/env python3
"""Judges what shell/check-cdc-status.sh collected and prints the report.

Usage: status_report.py DIR [--mode local|compose] [--partitions N] [--partitions-strict]
                            [--max-source-lag S] [--max-consumer-lag N] [--strict] [--quiet]

DIR holds what the shell script gathered (standard library only; no row values involved):
  components.tsv   kind <TAB> name <TAB> up (1 running, 0 not running, - not deployed) <TAB> detail
  <name>.health, <name>.health.code, <name>.status, <name>.metrics   for services that run
  output.txt       sections "@@MANIFEST <path>" (the manifest's JSON follows), "@@RECENT"
                   (paths of files modified in the last minute, relative to the output
                   folder), "@@DLQFILES" (the number of dead-letter files); absent when the
                   output folder could not be read (output.err says why)

Exit code: 0 healthy, 1 unhealthy (or, with --strict, warnings). The last line of the report
says HEALTHY or UNHEALTHY with the reasons.
"""

import argparse
import json
import os
import sys
import time

OK, WARN, FAIL, INFO = "OK", "WARN", "FAIL", "INFO"


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def read_json(path):
    text = read(path)
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def parse_metrics(text):
    """Prometheus text format -> {name: [(labels dict, value)]}."""
    out = {}
    for line in (text or "").splitlines():
        if not line or line.startswith("#"):
            continue
        try:
            head, value = line.rsplit(" ", 1)
            value = float(value)
        except ValueError:
            continue
        labels = {}
        name = head
        if "{" in head and head.endswith("}"):
            name, raw = head[:-1].split("{", 1)
            for part in raw.split('",'):
                if "=" in part:
                    k, v = part.split("=", 1)
                    labels[k.strip()] = v.strip().strip('"')
        out.setdefault(name, []).append((labels, value))
    return out


def msum(metrics, name):
    samples = metrics.get(name)
    if not samples:
        return None
    return sum(v for _, v in samples)


def fmt_int(n):
    return "?" if n is None else f"{int(n):,}"


def fmt_secs(s):
    if s is None:
        return "?"
    if s < 10:
        return f"{s:.1f} s"
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def parse_output(text):
    manifests, recent, dlq_files = [], [], None
    section, buf, path = None, [], None

    def flush():
        if section == "manifest" and path is not None:
            try:
                manifests.append((path, json.loads("".join(buf))))
            except ValueError:
                manifests.append((path, None))

    for line in text.splitlines(keepends=True):
        if line.startswith("@@"):
            flush()
            buf = []
            word = line[2:].strip()
            if word.startswith("MANIFEST "):
                section, path = "manifest", word[len("MANIFEST "):]
            elif word == "RECENT":
                section = "recent"
            elif word == "DLQFILES":
                section = "dlq"
            else:
                section = None
            continue
        if section == "manifest":
            buf.append(line)
        elif section == "recent" and line.strip():
            recent.append(line.strip())
        elif section == "dlq" and line.strip().isdigit():
            dlq_files = int(line.strip())
    flush()
    return manifests, recent, dlq_files


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--mode", default="local")
    ap.add_argument("--partitions", type=int)
    ap.add_argument("--partitions-strict", action="store_true")
    ap.add_argument("--max-source-lag", type=float, default=60.0)
    ap.add_argument("--max-consumer-lag", type=float)
    ap.add_argument("--strict", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()
    d = a.dir

    rows = []  # (component, verdict, text)
    reasons, warnings = [], []

    def add(component, verdict, text):
        rows.append((component, verdict, text))
        if verdict == FAIL:
            reasons.append(f"{component}: {text}")
        elif verdict == WARN:
            warnings.append(f"{component}: {text}")

    components = []
    for line in (read(os.path.join(d, "components.tsv")) or "").splitlines():
        parts = line.split("\t")
        if len(parts) >= 4:
            components.append(parts[:4])

    ready_workers, live_workers = 0, 0
    owned = []  # (worker, partition)
    consumer_lag_total = None
    dead_letters = 0
    failed_records = 0
    checkpoints_failed = 0
    alerts = []
    collector_seen = False

    for kind, name, up, detail in components:
        if kind in ("postgres", "kafka", "source-db"):
            if up == "1":
                add(name, OK, detail)
            elif up == "-":
                add(name, INFO, detail)
            else:
                add(name, FAIL, detail)
            continue
        if kind not in ("collector", "worker"):
            continue
        if kind == "collector":
            collector_seen = True
        if up == "-":
            add(name, WARN if kind == "collector" else FAIL, detail)
            continue
        if up != "1":
            add(name, FAIL, detail)
            continue
        base = os.path.join(d, name)
        health = read_json(base + ".health")
        status = read_json(base + ".status")
        metrics = parse_metrics(read(base + ".metrics"))
        if health is None or status is None:
            add(name, FAIL, f"{detail}; no answer on its health port")
            continue
        state = status.get("state", "?")
        live = bool(health.get("live"))
        ready = bool(health.get("ready"))
        details = status.get("details") or {}
        verdict = OK
        notes = [f"{state}, {'ready' if ready else 'NOT ready'}"]
        if not live or state == "failed":
            verdict = FAIL
        for al in details.get("alerts") or []:
            alerts.append((name, al))

        if kind == "collector":
            if not ready:
                failing = health.get("failing") or [k for k, v in (details.get("checks") or {}).items() if not v]
                verdict = FAIL
                notes.append("failing checks: " + (", ".join(failing) or "none registered yet"))
            lag_s = msum(metrics, "rtdp_collector_source_lag_seconds")
            if lag_s is None and details.get("lagMs") is not None:
                lag_s = details["lagMs"] / 1000.0
            snap_running = (msum(metrics, "rtdp_collector_snapshot_running") or 0) > 0
            pos = details.get("sourcePosition") or "-"
            notes.append(f"position {pos}")
            notes.append(f"source lag {fmt_secs(lag_s) if lag_s is not None else '-'}")
            notes.append(f"published {fmt_int(details.get('eventsPublishedTotal'))} events")
            reconnects = msum(metrics, "rtdp_collector_reconnects_total")
            if reconnects:
                notes.append(f"reconnects {fmt_int(reconnects)}")
            snap = details.get("snapshot")
            if snap_running or snap:
                done = (snap or {}).get("rowsDone")
                est = (snap or {}).get("rowsEstimated")
                eta = (snap or {}).get("etaS")
                notes.append(f"snapshot running: {fmt_int(done)} of {fmt_int(est)} rows, eta {fmt_secs(eta)}")
            if lag_s is not None and lag_s > a.max_source_lag:
                if snap_running:
                    verdict = WARN if verdict == OK else verdict
                else:
                    verdict = FAIL
                notes.append(f"source lag above {fmt_secs(a.max_source_lag)}")
            cur = [v for l, v in metrics.get("rtdp_collector_position", []) if l.get("kind") == "current"]
            conf = [v for l, v in metrics.get("rtdp_collector_position", []) if l.get("kind") == "confirmed"]
            if cur and conf and cur[0] - conf[0] > 64 * 1024 * 1024:
                verdict = WARN if verdict == OK else verdict
                notes.append("confirmed position far behind (slot not advancing?)")
            add(name, verdict, "; ".join([detail] + notes))
            continue

        # worker
        live_workers += 1 if live else 0
        parts = [p.get("partition") for p in details.get("partitions") or []]
        for p in parts:
            owned.append((name, p))
        if ready:
            ready_workers += 1
        elif verdict == OK:
            verdict = WARN
            failing = health.get("failing") or []
            if "partitions_assigned" in failing or not parts:
                notes.append("owns no partition (more workers than partitions, or a rebalance)")
            else:
                notes.append("failing checks: " + ", ".join(failing))
        lag = msum(metrics, "rtdp_consumer_lag")
        if lag is not None:
            consumer_lag_total = (consumer_lag_total or 0) + lag
        rec = details.get("records") or {}
        cps = details.get("checkpoints") or {}
        lat = details.get("latency") or {}
        dead_letters += int(rec.get("deadLetters") or 0)
        failed_records += int(msum(metrics, "rtdp_failed_records_count_total") or 0)
        checkpoints_failed += int(cps.get("failed") or 0)
        notes.append("partitions " + (",".join(str(p) for p in sorted(parts)) if parts else "none"))
        notes.append(f"consumer lag {fmt_int(lag) if lag is not None else '-'}")
        notes.append(f"records in {fmt_int(rec.get('in'))} out {fmt_int(rec.get('out'))}")
        notes.append(f"checkpoints {fmt_int(cps.get('count'))} ({fmt_int(cps.get('failed'))} failed)")
        if lat.get("p99") is not None:
            notes.append(f"p99 latency {fmt_secs(lat['p99'] / 1000.0)}")
        add(name, verdict, "; ".join([detail] + notes))

    if not any(k == "worker" for k, *_ in components):
        add("stream-worker", FAIL, "no worker running")
    elif ready_workers == 0:
        add("stream-worker", FAIL, f"no worker is ready ({live_workers} live)")

    # Partitions: every one owned exactly once?
    if owned or a.partitions:
        plist = [p for _, p in owned]
        distinct = sorted(set(plist))
        twice = sorted({p for p in plist if plist.count(p) > 1})
        text = f"{len(distinct)} owned" + (f" of {a.partitions}" if a.partitions else "")
        verdict = OK
        if twice:
            verdict = WARN
            text += f"; owned twice: {','.join(map(str, twice))} (a rebalance in progress?)"
        if a.partitions and len(distinct) != a.partitions:
            verdict = FAIL if a.partitions_strict else WARN
            missing = sorted(set(range(a.partitions)) - set(distinct))
            if missing:
                text += f"; without an owner: {','.join(map(str, missing))}"
        if twice and a.partitions_strict:
            verdict = FAIL
        add("partitions", verdict, text)

    if a.max_consumer_lag is not None and consumer_lag_total is not None:
        if consumer_lag_total > a.max_consumer_lag:
            add("consumer lag", FAIL, f"{fmt_int(consumer_lag_total)} records, above {fmt_int(a.max_consumer_lag)}")
        else:
            add("consumer lag", OK, f"{fmt_int(consumer_lag_total)} records (limit {fmt_int(a.max_consumer_lag)})")
    elif consumer_lag_total is not None:
        add("consumer lag", INFO, f"{fmt_int(consumer_lag_total)} records over all partitions")

    # Output folder: last checkpoint, recent files, dead-letter files.
    out_text = read(os.path.join(d, "output.txt"))
    dlq_files = None
    if out_text is None:
        err = (read(os.path.join(d, "output.err")) or "not readable").strip()
        add("output", WARN, err)
    else:
        manifests, recent, dlq_files = parse_output(out_text)
        now_ms = time.time() * 1000
        bad = [p for p, m in manifests if m is None]
        good = [(p, m) for p, m in manifests if m]
        texts = []
        verdict = OK
        if good:
            newest_path, newest = max(good, key=lambda pm: pm[1].get("updatedAtMs") or 0)
            age = (now_ms - (newest.get("updatedAtMs") or 0)) / 1000.0
            texts.append(f"last checkpoint {fmt_secs(max(age, 0))} ago ({newest.get('topic')}/{newest.get('partition')}, "
                         f"next offset {fmt_int(newest.get('nextOffset'))})")
            pending = [p for p, m in good if m.get("pending")]
            if pending:
                texts.append(f"renames pending in {len(pending)} manifest(s)")
        else:
            texts.append("no checkpoint yet")
        if bad:
            verdict = FAIL
            texts.append("unreadable manifest(s): " + ", ".join(bad) + " (md/RUNBOOK_STREAM_WORKER.md)")
        data_recent = [p for p in recent if not p.startswith("_dlq/")]
        dlq_recent = [p for p in recent if p.startswith("_dlq/")]
        texts.append(f"{len(data_recent)} data file(s) and {len(dlq_recent)} dead-letter file(s) written in the last minute")
        add("output", verdict, "; ".join(texts))

    if dead_letters or failed_records or dlq_files:
        add("dead letters", WARN, f"{fmt_int(dead_letters)} committed since the workers started, "
            f"{fmt_int(failed_records)} failed records; {fmt_int(dlq_files or 0)} file(s) in _dlq/ "
            "(shell/dlq-inspect.sh)")
    else:
        add("dead letters", OK, "none")
    if checkpoints_failed:
        add("checkpoints", WARN, f"{checkpoints_failed} failed attempt(s) since the workers started")

    if alerts:
        for who, al in alerts:
            sev = al.get("severity", "?")
            resolving = " (resolving)" if al.get("resolving") else ""
            verdict = FAIL if sev == "high" and not resolving else WARN
            add("alert " + str(al.get("alert")), verdict, f"{who}: {sev}{resolving}: {al.get('message', '')}")
    else:
        add("alerts", OK, "none")

    unhealthy = bool(reasons) or (a.strict and bool(warnings))
    if not a.quiet:
        width = max([len(c) for c, _, _ in rows] + [9])
        print(f"{'COMPONENT':<{width}}  {'STATE':<5}  DETAILS")
        for c, v, t in rows:
            print(f"{c:<{width}}  {v:<5}  {t}")
        print()
    if unhealthy:
        why = reasons + (warnings if a.strict else [])
        print("UNHEALTHY: " + " | ".join(why))
        return 1
    if warnings:
        print(f"HEALTHY with {len(warnings)} warning(s)")
    else:
        print("HEALTHY")
    return 0


if __name__ == "__main__":
    sys.exit(main())
