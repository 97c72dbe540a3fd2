#!/usr/bin/env python3
"""Independent reader of rtdp output files, for tests.

    read_output.py FILE...

Prints, for each file, one JSON document per line:

    {"file": ..., "format": "parquet"|"csv"|"jsonl",
     "columns": [[name, type], ...], "rows": [[value, ...], ...], ...}

Types are the reader's own type strings:
- Parquet (pyarrow): the arrow schema types, e.g. "int64", "decimal128(10, 2)",
  "timestamp[us, tz=UTC]", "date32[day]"; plus "field_metadata": {name: {key: value}}.
- CSV (duckdb `read_csv(header=true, all_varchar=false)`, session time zone UTC): the
  sniffed duckdb types, e.g. "BIGINT", "DOUBLE", "TIMESTAMP WITH TIME ZONE"; plus
  "text_rows": the same file read with all_varchar=true (the exact field text).
- JSON lines (python json; .gz via gzip, .zst via pyarrow's zstd stream): per column the
  python types of its non-null values joined by "|" ("int", "float|str", ...), or "null".

Values are rendered as JSON-friendly strings (null stays null): decimals as exact
digits (format(d, "f")), dates/times/timestamps isoformat(), bytes base64, booleans
"true"/"false", ints str(), floats repr() ("nan", "inf", "-inf"), strings as they are.
"""

import base64
import datetime
import decimal
import gzip
import json
import sys


def render(v):
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, decimal.Decimal):
        return format(v, "f")
    if isinstance(v, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(v)).decode("ascii")
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, str):
        return v
    return json.dumps(v, ensure_ascii=False)


def read_parquet(path):
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    columns = [[f.name, str(f.type)] for f in table.schema]
    field_metadata = {
        f.name: {k.decode(): v.decode() for k, v in (f.metadata or {}).items()}
        for f in table.schema
    }
    cols = [[render(v) for v in c.to_pylist()] for c in table.columns]
    rows = [list(r) for r in zip(*cols)]
    return {
        "format": "parquet",
        "columns": columns,
        "rows": rows,
        "field_metadata": field_metadata,
        "num_row_groups": pq.ParquetFile(path).num_row_groups,
    }


def arrow_rows(rel):
    # Through arrow: duckdb's own fetch of TIMESTAMPTZ needs pytz, pyarrow's does not.
    for name in ("to_arrow_table", "fetch_arrow_table", "arrow"):
        if hasattr(rel, name):
            table = getattr(rel, name)()
            break
    if hasattr(table, "read_all"):
        table = table.read_all()
    cols = [[render(v) for v in c.to_pylist()] for c in table.columns]
    return [list(r) for r in zip(*cols)]


def read_csv(path):
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    lit = "'" + path.replace("'", "''") + "'"
    typed = con.sql(f"SELECT * FROM read_csv({lit}, header = true, all_varchar = false)")
    columns = [[name, str(t)] for name, t in zip(typed.columns, typed.types)]
    rows = arrow_rows(typed)
    text = con.sql(f"SELECT * FROM read_csv({lit}, header = true, all_varchar = true)")
    text_rows = arrow_rows(text)
    return {"format": "csv", "columns": columns, "rows": rows, "text_rows": text_rows}


def open_text(path):
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", newline="\n")
    if path.endswith(".zst"):
        import io

        import pyarrow as pa

        data = pa.input_stream(path, compression="zstd").read()
        return io.StringIO(data.decode("utf-8"), newline="\n")
    return open(path, "r", encoding="utf-8", newline="\n")


def py_type(v):
    return type(v).__name__


def read_jsonl(path):
    names = None
    objs = []
    with open_text(path) as f:
        for n, line in enumerate(f):
            if not line.endswith("\n"):
                raise ValueError(f"{path}: line {n + 1} has no newline")
            obj = json.loads(line)
            keys = list(obj.keys())
            if names is None:
                names = keys
            elif keys != names:
                raise ValueError(f"{path}: line {n + 1} has keys {keys}, expected {names}")
            objs.append(obj)
    names = names or []
    columns = []
    for name in names:
        kinds = sorted({py_type(o[name]) for o in objs if o[name] is not None})
        columns.append([name, "|".join(kinds) if kinds else "null"])
    rows = [[render(o[name]) for name in names] for o in objs]
    return {"format": "jsonl", "columns": columns, "rows": rows}


def read_file(path):
    base = path[:-3] if path.endswith(".gz") else path[:-4] if path.endswith(".zst") else path
    if base.endswith(".parquet"):
        out = read_parquet(path)
    elif base.endswith(".csv"):
        out = read_csv(path)
    elif base.endswith(".jsonl") or base.endswith(".json"):
        out = read_jsonl(path)
    else:
        raise ValueError(f"{path}: unknown format")
    return {"file": path, **out}


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    for path in argv[1:]:
        print(json.dumps(read_file(path), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
