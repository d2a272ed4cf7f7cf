"""Benchmark: flotilla's point-in-time join (DuckDB ASOF) against pandas.merge_asof.

N events x T feature tables of N rows each (default N = 10,000,000, T = 5), generated as
Parquet in a temporary folder. Each engine runs in its own child process so that its wall time
and peak memory (ru_maxrss of that child, via os.wait4) are measured in isolation; the parent
prints a table with the ratios and checks that both engines produced the same values.

    python bench/pit.py --rows 1000000            # quick
    python bench/pit.py                           # the README's 10M x 5 target (<= 60 s)
    python bench/pit.py --rows 1000000 --skip-pandas
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CHUNK = 1_000_000
BASE_US = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z
SPAN_US = 365 * 86_400 * 1_000_000


def generate(folder: Path, rows: int, tables: int, entities: int, seed: int) -> None:
    """Write events.parquet and f0..f{T-1}.parquet chunk by chunk (bounded memory)."""
    rng = np.random.default_rng(seed)
    ts = pa.timestamp("us", tz="UTC")
    specs = [("events", "event_time", None)] + [
        (f"f{i}", "written_at", f"x{i}") for i in range(tables)
    ]
    for name, time_col, value_col in specs:
        fields = [("entity", pa.int64()), (time_col, ts)]
        if value_col:
            fields.append((value_col, pa.float64()))
        schema = pa.schema(fields)
        with pq.ParquetWriter(folder / f"{name}.parquet", schema) as writer:
            for start in range(0, rows, CHUNK):
                n = min(CHUNK, rows - start)
                cols: list[Any] = [
                    rng.integers(0, entities, n),
                    pa.array(BASE_US + rng.integers(0, SPAN_US, n), ts),
                ]
                if value_col:
                    cols.append(rng.normal(size=n))
                writer.write_table(pa.Table.from_arrays(cols, schema=schema))


def run_flotilla(folder: Path, tables: int) -> pa.Table:
    from flotilla.audit import point_in_time_join

    return point_in_time_join(
        folder / "events.parquet",
        [folder / f"f{i}.parquet" for i in range(tables)],
        entity="entity",
        event_time="event_time",
    )


def run_pandas(folder: Path, tables: int) -> pa.Table:
    import pandas as pd

    events = pd.read_parquet(folder / "events.parquet")
    events["__order"] = np.arange(len(events))
    out = events.sort_values("event_time", kind="stable")
    for i in range(tables):
        feats = pd.read_parquet(folder / f"f{i}.parquet").sort_values("written_at", kind="stable")
        out = pd.merge_asof(
            out,
            feats,
            left_on="event_time",
            right_on="written_at",
            by="entity",
            direction="backward",
            allow_exact_matches=True,
        ).drop(columns=["written_at"])
        del feats
    out = out.sort_values("__order").drop(columns=["__order"])
    return pa.Table.from_pandas(out, preserve_index=False)


def child(engine: str, folder: Path, tables: int) -> None:
    """Run one engine and print its compute time and a checksum of the result as JSON."""
    start = time.perf_counter()
    table = (run_flotilla if engine == "flotilla" else run_pandas)(folder, tables)
    seconds = time.perf_counter() - start
    sums = {}
    for i in range(tables):
        col = table.column(f"x{i}").to_numpy(zero_copy_only=False)
        sums[f"x{i}"] = [int(np.isnan(col).sum()), round(float(np.nansum(col)), 3)]
    print(json.dumps({"seconds": seconds, "rows": table.num_rows, "checksum": sums}))


def measure(engine: str, folder: Path, tables: int, timeout: float) -> dict[str, Any]:
    """Run ``engine`` in a child process; wall time, peak RSS and its own report."""
    cmd = [
        sys.executable,
        __file__,
        "--child",
        engine,
        "--dir",
        str(folder),
        "--tables",
        str(tables),
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = start + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            return {"engine": engine, "error": f"timed out after {timeout:.0f} s"}
        time.sleep(0.05)
    wall = time.perf_counter() - start
    out = proc.stdout.read() if proc.stdout else ""
    err = proc.stderr.read() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        return {"engine": engine, "error": (err.strip().splitlines() or ["failed"])[-1]}
    report = json.loads(out.strip().splitlines()[-1])
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "engine": engine,
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_mb": usage.ru_maxrss / 1024,
        **report,
    }


def show(results: list[dict[str, Any]], rows: int, tables: int) -> None:
    from rich.console import Console
    from rich.table import Table

    base = next((r for r in results if r["engine"] == "pandas" and "error" not in r), None)
    table = Table(title=f"point-in-time join: {rows:,} events x {tables} tables of {rows:,} rows")
    for col in (
        "engine",
        "join s",
        "wall s",
        "cpu s",
        "peak MB",
        "time vs pandas",
        "cpu vs pandas",
        "memory vs pandas",
    ):
        table.add_column(col, justify="right")
    for r in results:
        if "error" in r:
            table.add_row(r["engine"], r["error"], "", "", "", "", "", "")
            continue
        ratio_t = f"{r['seconds'] / base['seconds']:.2f}x" if base else "-"
        ratio_c = f"{r['cpu_s'] / base['cpu_s']:.2f}x" if base else "-"
        ratio_m = f"{r['peak_mb'] / base['peak_mb']:.2f}x" if base else "-"
        table.add_row(
            r["engine"],
            f"{r['seconds']:.1f}",
            f"{r['wall_s']:.1f}",
            f"{r['cpu_s']:.1f}",
            f"{r['peak_mb']:,.0f}",
            ratio_t,
            ratio_c,
            ratio_m,
        )
    console = Console()
    console.print(table)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    console.print(f"{os.cpu_count()} cores, load average {load} (wall times depend on it)")
    ok = [r for r in results if "error" not in r]
    if len(ok) == 2:
        same = ok[0]["checksum"] == ok[1]["checksum"] and ok[0]["rows"] == ok[1]["rows"]
        console.print(f"results agree (null counts and sums per feature): {same}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000, help="events and rows per table")
    parser.add_argument("--tables", type=int, default=5, help="number of feature tables")
    parser.add_argument("--entities", type=int, default=0, help="distinct entities (rows/10)")
    parser.add_argument("--skip-pandas", action="store_true", help="only run flotilla")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per engine")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", choices=["flotilla", "pandas"], help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.dir, args.tables)
        return
    with tempfile.TemporaryDirectory(prefix="flotilla-pit-bench-") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        generate(
            folder, args.rows, args.tables, args.entities or max(args.rows // 10, 1), args.seed
        )
        print(f"generated data in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        engines = ["flotilla"] if args.skip_pandas else ["flotilla", "pandas"]
        results = [measure(e, folder, args.tables, args.timeout) for e in engines]
    show(results, args.rows, args.tables)


if __name__ == "__main__":
    main()
