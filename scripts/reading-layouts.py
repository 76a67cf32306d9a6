#!/usr/bin/env python3
"""Compares layouts of the readings table on SQLite (issue 12), with the hub's own settings
(WAL, synchronous=FULL, 4 KiB pages), in one run on this machine:

  device     today's table: WITHOUT ROWID, clustered by (device_id, instant)
  journal-N  an append-only journal in arrival order, folded every N readings into the
             device-clustered table in one sorted INSERT ... SELECT (and emptied)
  bucket-M   WITHOUT ROWID clustered by (M-minute bucket, device_id, instant)

Write side: the `bench ingest` traffic (2,000 devices, one reading a minute each, messages
interleaved device by device) committed in batches of 500 on a table that already holds 300
readings per device; reports the WAL bytes written per reading (the WAL's growth with automatic
checkpoints off: every frame written stays in the file) and the commits' rate.
Read side: one device's month of 1-minute readings (44,640) on a table of 200 such devices, the
query that the device-readings route and the savings upkeep run, and for the journal the scan a
reader pays to see readings not yet folded.

Usage: python3 scripts/reading-layouts.py [--readings 100000] [--directory DIR]
"""
import argparse
import os
import sqlite3
import tempfile
import time

ROW = "device_id TEXT NOT NULL, instant INTEGER NOT NULL, energy_wh INTEGER NOT NULL, power_w REAL, segment INTEGER NOT NULL, time_source TEXT NOT NULL, received_at INTEGER NOT NULL"
COLUMNS = "device_id, instant, energy_wh, power_w, segment, time_source, received_at"
MINUTE = 60_000
START = 1_767_225_600_000  # 2026-01-01T00:00Z


def open_db(path):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    return db


def create(db, layout):
    if layout.startswith("bucket"):
        db.execute(f"CREATE TABLE reading (bucket INTEGER NOT NULL, {ROW}, PRIMARY KEY (bucket, device_id, instant)) WITHOUT ROWID")
    else:
        db.execute(f"CREATE TABLE reading ({ROW}, PRIMARY KEY (device_id, instant)) WITHOUT ROWID")
    if layout.startswith("journal"):
        db.execute(f"CREATE TABLE reading_journal (seq INTEGER PRIMARY KEY, {ROW})")


def bucket_minutes(layout):
    return int(layout.split("-")[1]) if layout.startswith("bucket") else None


def rows_for(layout, readings):
    """(device, instant, energy) → the table's row tuple."""
    minutes = bucket_minutes(layout)
    out = []
    for device, instant, energy in readings:
        row = (device, instant, energy, 300.0, 0, "device", instant)
        out.append(((instant // (minutes * MINUTE),) + row) if minutes else row)
    return out


def insert_sql(layout, table="reading"):
    if layout.startswith("bucket"):
        return f"INSERT INTO reading (bucket, {COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    return f"INSERT INTO {table} ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"


def device_id(index):
    return f"bench-{index + 1:05d}"


def fold(db):
    db.execute("BEGIN IMMEDIATE")
    db.execute(f"INSERT INTO reading ({COLUMNS}) SELECT {COLUMNS} FROM reading_journal ORDER BY device_id, instant ON CONFLICT DO NOTHING")
    db.execute("DELETE FROM reading_journal")
    db.execute("COMMIT")


def write_side(directory, layout, devices, history, readings, batch):
    path = os.path.join(directory, f"write-{layout}.sqlite")
    db = open_db(path)
    create(db, layout)
    # History, loaded quickly (not measured): `history` readings per device before the measured ones.
    db.execute("PRAGMA synchronous=OFF")
    db.execute("BEGIN")
    old = [(device_id(d), START + r * MINUTE, 1_000_000 + r * 5) for d in range(devices) for r in range(history)]
    db.executemany(insert_sql(layout), rows_for(layout, old))
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA wal_autocheckpoint=0")
    fold_every = int(layout.split("-")[1]) if layout.startswith("journal") else None
    target = "reading_journal" if fold_every else "reading"
    wal = path + "-wal"
    before = os.path.getsize(wal) if os.path.exists(wal) else 0
    messages = [(device_id(k % devices), START + (history + k // devices) * MINUTE, 1_000_000 + (history + k // devices) * 5) for k in range(readings)]
    commits = 0
    folds = 0
    fold_seconds = 0.0
    unfolded = 0
    start = time.perf_counter()
    for offset in range(0, readings, batch):
        chunk = messages[offset:offset + batch]
        db.execute("BEGIN IMMEDIATE")
        db.executemany(insert_sql(layout, target), rows_for(layout, chunk))
        db.execute("COMMIT")
        commits += 1
        unfolded += len(chunk)
        if fold_every and unfolded >= fold_every:
            fold_start = time.perf_counter()
            fold(db)
            fold_seconds += time.perf_counter() - fold_start
            folds += 1
            unfolded = 0
    if fold_every and unfolded:
        fold_start = time.perf_counter()
        fold(db)
        fold_seconds += time.perf_counter() - fold_start
        folds += 1
    seconds = time.perf_counter() - start
    written = os.path.getsize(wal) - before
    db.close()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    return written / readings, readings / seconds, commits, folds, fold_seconds


def read_side(directory, layout, devices, days, repetitions):
    path = os.path.join(directory, f"read-{layout}.sqlite")
    db = open_db(path)
    create(db, layout)
    db.execute("PRAGMA synchronous=OFF")
    per_device = days * 1440
    # Arrival order (minute by minute, every device), as ingest would have stored them.
    chunk = []
    db.execute("BEGIN")
    for r in range(per_device):
        for d in range(devices):
            chunk.append((device_id(d), START + r * MINUTE, 1_000_000 + r * 5))
        if len(chunk) >= 100_000:
            db.executemany(insert_sql(layout), rows_for(layout, chunk))
            chunk = []
    db.executemany(insert_sql(layout), rows_for(layout, chunk))
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    os.system("sync")
    db = sqlite3.connect(path)
    end = START + per_device * MINUTE
    minutes = bucket_minutes(layout)
    if minutes:
        query = """WITH RECURSIVE b(x) AS (SELECT ? UNION ALL SELECT x + 1 FROM b WHERE x < ?)
                   SELECT COUNT(*), SUM(r.energy_wh) FROM b JOIN reading r ON r.bucket = b.x AND r.device_id = ? AND r.instant >= ? AND r.instant < ?"""
        arguments = lambda device: (START // (minutes * MINUTE), (end - 1) // (minutes * MINUTE), device, START, end)
    else:
        query = "SELECT COUNT(*), SUM(energy_wh) FROM reading WHERE device_id = ? AND instant >= ? AND instant < ?"
        arguments = lambda device: (device, START, end)
    best = float("inf")
    for repetition in range(repetitions):
        start = time.perf_counter()
        for d in range(0, devices, 10):
            count, _ = db.execute(query, arguments(device_id(d))).fetchone()
            assert count == per_device, (layout, count)
        best = min(best, (time.perf_counter() - start) / len(range(0, devices, 10)))
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.close()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    return best, pages


def journal_scan(directory, rows, devices, repetitions):
    """What a reader pays to see a device's unfolded readings: a scan of the whole journal."""
    path = os.path.join(directory, "journal-scan.sqlite")
    db = open_db(path)
    create(db, "journal-0")
    db.execute("BEGIN")
    db.executemany(insert_sql("journal", "reading_journal"),
                   rows_for("journal", [(device_id(k % devices), START + (k // devices) * MINUTE, k) for k in range(rows)]))
    db.execute("COMMIT")
    best = float("inf")
    for repetition in range(repetitions):
        start = time.perf_counter()
        for d in range(0, devices, 100):
            db.execute("SELECT COUNT(*), SUM(energy_wh) FROM reading_journal WHERE device_id = ? AND instant >= ? AND instant < ?",
                       (device_id(d), START, START + 10**12)).fetchone()
        best = min(best, (time.perf_counter() - start) / len(range(0, devices, 100)))
    db.close()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readings", type=int, default=100_000, help="readings written in the write-side test")
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--read-devices", type=int, default=200)
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--directory", default=None)
    args = parser.parse_args()
    directory = args.directory or tempfile.mkdtemp(prefix="reading-layouts-")
    print(f"SQLite {sqlite3.sqlite_version}; load average {open('/proc/loadavg').read().split()[:3]}; files in {directory}")
    layouts = ["device", "journal-20000", "journal-50000", "journal-100000", "bucket-10", "bucket-60"]
    print(f"\nwrite: {args.readings} readings from {args.devices} devices, batches of 500, synchronous=FULL, 300 readings per device already stored")
    print(f"{'layout':16} {'WAL bytes/reading':>18} {'readings/s':>11} {'commits':>8} {'folds':>6} {'fold s':>7}")
    for layout in layouts:
        per_reading, rate, commits, folds, fold_seconds = write_side(directory, layout, args.devices, 300, args.readings, 500)
        print(f"{layout:16} {per_reading:18.0f} {rate:11.0f} {commits:8d} {folds:6d} {fold_seconds:7.2f}")
    print(f"\nread: one device's {args.days} days of 1-minute readings ({args.days * 1440}), {args.read_devices} devices stored in arrival order; best of 3")
    print(f"{'layout':16} {'ms per device-month':>20} {'database pages':>15}")
    for layout in ["device", "bucket-10", "bucket-60"]:
        seconds, pages = read_side(directory, layout, args.read_devices, args.days, 3)
        print(f"{layout:16} {seconds * 1000:20.2f} {pages:15d}")
    for rows in (20_000, 50_000, 100_000):
        seconds = journal_scan(directory, rows, args.devices, 3)
        print(f"journal scan of {rows:>7} unfolded readings for one device: {seconds * 1000:.2f} ms")


if __name__ == "__main__":
    main()
