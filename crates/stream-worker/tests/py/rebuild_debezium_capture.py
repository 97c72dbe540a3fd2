#!/usr/bin/env python3
"""Rebuilds the tables of the Debezium capture (tests/data/debezium_pg/) from the worker's
committed files and compares them with the database's final tables, value by value.

    rebuild_debezium_capture.py MODE FINAL_TABLES_JSON OUTPUT_ROOT FILE...

MODE is "schema" (JsonConverter with schemas: the files carry the types) or "noschema"
(without: a date arrives as days, a timestamp as microseconds, a numeric(p,s) as
base64 two's-complement bytes, and the worker writes what arrived; this reader decodes
those with Debezium's documented encodings, knowing the column types from capture.sh).
An unconstrained numeric must be exact decimal text in both modes.

Files are read by read_output.py (pyarrow / duckdb / json), applied per table in
(partition, first offset) order: c/u/r upsert by id, d removes. Prints one JSON report:
{"tables": {name: {"rows": n, "expected": m, "problems": [...]}}, "rows_read": n,
 "duplicate_event_ids": [...]}. Exit 0 whatever it finds: the caller asserts.
"""

import base64
import datetime
import decimal
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import read_output  # noqa: E402

EPOCH = datetime.datetime(1970, 1, 1)

# The column types of capture.sh's CREATE TABLE statements.
TABLES = {
    "accounts": {
        "id": "int",
        "name": "text",
        "n": "numeric",
        "amount": "numeric(12,2)",
        "day": "date",
        "at": "timestamp",
        "flag": "bool",
        "score": "float8",
    },
    "items_full": {"id": "int", "note": "text", "big": "numeric"},
}


def from_db(ty, v):
    """A value of final_tables.json (row_to_json) in canonical form."""
    if v is None:
        return None
    if ty == "int":
        return int(v)
    if ty in ("numeric", "numeric(12,2)"):
        return decimal.Decimal(v)
    if ty == "float8":
        return float(v)
    if ty == "bool":
        return bool(v)
    if ty == "date":
        return datetime.date.fromisoformat(v)
    if ty == "timestamp":
        return datetime.datetime.fromisoformat(v)
    return v


def from_file(ty, v, mode):
    """A value as read_output.py renders it, in canonical form."""
    if v is None:
        return None
    if ty == "int":
        return int(v)
    if ty == "numeric":
        return decimal.Decimal(v)  # exact text in both modes
    if ty == "numeric(12,2)":
        if mode == "noschema":
            unscaled = int.from_bytes(base64.b64decode(v), "big", signed=True)
            return decimal.Decimal(unscaled).scaleb(-2)
        return decimal.Decimal(v)
    if ty == "float8":
        return float(v)
    if ty == "bool":
        return {"true": True, "false": False}[v]
    if ty == "date":
        if mode == "noschema":
            return (EPOCH + datetime.timedelta(days=int(v))).date()
        return datetime.date.fromisoformat(v)
    if ty == "timestamp":
        if mode == "noschema":
            return EPOCH + datetime.timedelta(microseconds=int(v))
        t = datetime.datetime.fromisoformat(v)
        return t.replace(tzinfo=None) if t.tzinfo is not None else t
    return v


def main():
    mode, final_path, root = sys.argv[1], sys.argv[2], sys.argv[3]
    files = sys.argv[4:]
    with open(final_path) as f:
        final = json.load(f, parse_float=decimal.Decimal, parse_int=int)
    # (table, partition, first offset, path)
    placed = []
    for path in files:
        rel = os.path.relpath(path, root)
        folder = rel.split(os.sep)[0]
        table = folder.split(".", 1)[1] if "." in folder else folder
        # <topic>+<partition>+<first>+<last>.<ext>; the topic may hold dots and pluses.
        _topic, part, first, _rest = os.path.basename(path).rsplit("+", 3)
        placed.append((table, int(part), int(first), path))
    placed.sort()
    state = {t: {} for t in TABLES}
    problems = {t: [] for t in TABLES}
    seen_ids = set()
    duplicates = []
    rows_read = 0
    for table, _part, _first, path in placed:
        if table not in TABLES:
            problems.setdefault(table, []).append(f"unexpected table folder in {path}")
            continue
        types = TABLES[table]
        doc = read_output.read_file(path)
        names = [c[0] for c in doc["columns"]]
        for n, row in enumerate(doc["rows"]):
            rows_read += 1
            r = dict(zip(names, row))
            if r["_event_id"] in seen_ids:
                duplicates.append(r["_event_id"])
            seen_ids.add(r["_event_id"])
            missing = [c for c in types if c not in r]
            if missing:
                problems[table].append(f"{path} row {n}: columns {missing} missing")
                continue
            try:
                values = {c: from_file(ty, r[c], mode) for c, ty in types.items()}
            except Exception as e:  # noqa: BLE001 - reported, not raised
                problems[table].append(f"{path} row {n}: unreadable value: {e!r}")
                continue
            key = values["id"]
            op = r["_op"]
            if op == "d":
                if key not in state[table]:
                    problems[table].append(f"{path} row {n}: delete of absent id {key}")
                state[table].pop(key, None)
            elif op in ("c", "u", "r"):
                if op == "c" and key in state[table]:
                    problems[table].append(f"{path} row {n}: create of present id {key}")
                state[table][key] = values
            else:
                problems[table].append(f"{path} row {n}: unknown _op {op!r}")
    report = {"tables": {}, "rows_read": rows_read, "duplicate_event_ids": duplicates}
    for table, types in TABLES.items():
        expected = {}
        for row in final.get(table, []):
            expected[int(row["id"])] = {c: from_db(ty, row[c]) for c, ty in types.items()}
        got = state[table]
        for key in sorted(set(expected) | set(got)):
            if key not in got:
                problems[table].append(f"id {key}: in the database, not in the files")
            elif key not in expected:
                problems[table].append(f"id {key}: in the files, not in the database")
            else:
                for c in types:
                    if got[key][c] != expected[key][c]:
                        problems[table].append(
                            f"id {key} column {c}: files {got[key][c]!r} != database {expected[key][c]!r}"
                        )
        report["tables"][table] = {
            "rows": len(got),
            "expected": len(expected),
            "problems": problems[table],
        }
    print(json.dumps(report, default=str))


if __name__ == "__main__":
    main()
