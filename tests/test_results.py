import csv
import multiprocessing as mp
import os
import signal
import time

import numpy as np
import pandas as pd
import pytest

from harness import results
from harness.results import (
    COLUMNS,
    SCHEMA,
    ResultsFileError,
    ResultsStore,
    load_predictions,
    merge_results,
    run_id,
    save_predictions,
)


def _row(rid, status="ok", finished_at="2024-01-01T00:00:00+00:00", **extra):
    row = dict(
        run_id=rid,
        task="sst2",
        model="bert-tiny",
        head="native",
        head_options={},
        seed=0,
        mode="finetune",
        metric="accuracy",
        score=0.8125,
        metrics={"accuracy": 0.8125, "f1": 0.8},
        status=status,
        finished_at=finished_at,
    )
    row.update(extra)
    return row


def _ctx():
    return mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")


def _write(path, text):
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)


def _temps(directory):
    return [n for n in os.listdir(directory) if ".tmp-" in n]


def test_columns_and_schema():
    assert SCHEMA == "sla-bench/runs/1"
    assert COLUMNS[:3] == ["schema", "run_id", "task"]
    assert len(COLUMNS) == 26 and len(set(COLUMNS)) == 26
    assert COLUMNS[-1] == "config"


def test_run_id_stable_and_sensitive():
    a = run_id(task="sst2", model="m", head="sla", seed=0)
    b = run_id(seed=0, head="sla", model="m", task="sst2")
    assert a == b and len(a) == 16 and int(a, 16) >= 0
    assert run_id(task="sst2", model="m", head="sla", seed=1) != a
    assert run_id(x=np.int64(3)) == run_id(x=3)


def test_append_and_read_back(tmp_path):
    path = tmp_path / "runs.csv"
    store = ResultsStore(path)
    assert store.rows() == [] and store.completed_ids() == set()
    store.append(_row("a", error='has "quotes", commas\nand a newline'))
    store.append(_row("b", seed=1, score=0.5, head="sla", head_options={"k": 2, "a": 1}, params_head=1234))
    rows = store.rows()
    assert [r["run_id"] for r in rows] == ["a", "b"]
    assert all(r["schema"] == SCHEMA for r in rows)
    assert set(rows[0]) == set(COLUMNS)
    assert rows[0]["error"] == 'has "quotes", commas\nand a newline'
    assert rows[0]["score"] == "0.8125"
    assert rows[1]["head_options"] == '{"a":1,"k":2}'
    assert rows[0]["n_train"] == ""  # missing keys become empty
    # header on disk is exactly COLUMNS
    with open(path, newline="") as fh:
        assert next(csv.reader(fh)) == COLUMNS
    frame = store.read_frame()
    assert list(frame.columns) == COLUMNS
    assert frame["score"].dtype == np.float64
    assert frame["score"].tolist() == [0.8125, 0.5]
    assert frame["seed"].tolist() == [0, 1]
    assert str(frame["params_head"].dtype) == "Int64"
    assert pd.isna(frame["params_head"][0]) and frame["params_head"][1] == 1234
    assert _temps(tmp_path) == []


def test_append_rejects_unknown_key_and_bad_values(tmp_path):
    store = ResultsStore(tmp_path / "runs.csv")
    with pytest.raises(ValueError, match="bogus"):
        store.append(_row("a", bogus=1))
    with pytest.raises(ValueError, match="status"):
        store.append(_row("a", status="done"))
    with pytest.raises(ValueError, match="JSON"):
        store.append(_row("a", config="not json"))
    with pytest.raises(ValueError, match="run_id"):
        store.append(_row(""))
    assert store.rows() == []


def test_empty_file_is_new(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("")
    store = ResultsStore(path)
    assert store.rows() == []
    store.append(_row("a"))
    assert [r["run_id"] for r in store.rows()] == ["a"]


def test_foreign_file_rejected(tmp_path):
    path = tmp_path / "runs.csv"
    _write(path, "hello,world\n1,2\n")
    with pytest.raises(ResultsFileError) as info:
        ResultsStore(path)
    msg = str(info.value)
    assert str(path) in msg and "hello,world" in msg and "--out" in msg
    assert isinstance(info.value, ValueError)
    # binary garbage
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    with pytest.raises(ResultsFileError, match="runs.csv"):
        ResultsStore(path).rows()


def test_header_mismatch_rejected(tmp_path):
    path = tmp_path / "runs.csv"
    _write(path, ",".join(COLUMNS[:-1]) + "\n")  # one column short
    with pytest.raises(ResultsFileError) as info:
        ResultsStore(path)
    assert str(path) in str(info.value)
    # merging into it must not clobber it either
    src = ResultsStore(tmp_path / "src.csv")
    src.append(_row("a"))
    with pytest.raises(ResultsFileError):
        merge_results([tmp_path / "src.csv"], path)
    assert path.read_text() == ",".join(COLUMNS[:-1]) + "\n"


def test_schema_mismatch_names_both_versions(tmp_path):
    path = tmp_path / "runs.csv"
    store = ResultsStore(path)
    store.append(_row("a"))
    text = path.read_text().replace(SCHEMA, "sla-bench/runs/0")
    _write(path, text)
    with pytest.raises(ResultsFileError) as info:
        store.rows()
    msg = str(info.value)
    assert "sla-bench/runs/0" in msg and SCHEMA in msg and str(path) in msg
    with pytest.raises(ResultsFileError):
        store.append(_row("b"))
    # an older schema with a different header is also reported as a schema problem
    _write(path, "schema,run_id,score\nsla-bench/runs/0,x,1.0\n")
    with pytest.raises(ResultsFileError, match="incompatible schema version 'sla-bench/runs/0'"):
        ResultsStore(path)


def test_second_header_inside_the_file(tmp_path):
    """Two runs.csv files joined with cat: before, 'incompatible schema version 'schema''."""
    for name, rid in (("a.csv", "a"), ("b.csv", "b")):
        ResultsStore(tmp_path / name).append(_row(rid))
    path = tmp_path / "runs.csv"
    path.write_bytes((tmp_path / "a.csv").read_bytes() + (tmp_path / "b.csv").read_bytes())
    with pytest.raises(ResultsFileError) as info:
        ResultsStore(path)
    msg = str(info.value)
    assert "line 3 is a second header" in msg and "run_bench.py merge" in msg and "delete line 3" in msg
    assert "schema version" not in msg


def test_truncated_last_row_at_every_cut(tmp_path):
    """A file cut short anywhere inside its last row is reported as truncated, naming the line; before,
    'record 3 has N fields' or 'not valid CSV'."""
    path = tmp_path / "runs.csv"
    store = ResultsStore(path)
    store.append(_row("a", error="two\nlines"))  # one row on lines 2-3: line numbers are physical
    store.append(_row("b", config={"lr": 0.001, "batch_size": 32}))
    whole = path.read_bytes()
    start = whole.rindex(b"\n", 0, len(whole) - 1) + 1  # the last row begins here, on line 4
    truncated = 0
    for cut in range(start + 1, len(whole) - 1):
        path.write_bytes(whole[:cut])
        with pytest.raises(ResultsFileError) as info:
            store.rows()
        msg = str(info.value)
        assert "the file is truncated" in msg and "(line 4)" in msg and "rows before line 4 are complete" in msg, msg
        truncated += 1
    assert truncated == len(whole) - start - 2
    path.write_bytes(whole[:-1])  # only the final newline lost: the row is whole and kept
    assert [r["run_id"] for r in store.rows()] == ["a", "b"]


@pytest.mark.parametrize("change,words", [
    (lambda cols: cols[:-1], ["missing column(s) config"]),
    (lambda cols: [("points" if c == "score" else c) for c in cols], ["missing column(s) score",
                                                                      "unknown column(s) points"]),
    (lambda cols: cols[1:2] + cols[:1] + cols[2:], ["the right columns in another order"]),
    (lambda cols: cols + ["score"], ["a column repeated"]),
])
def test_wrong_columns_are_named(tmp_path, change, words):
    path = tmp_path / "runs.csv"
    _write(path, ",".join(change(list(COLUMNS))) + "\n")
    with pytest.raises(ResultsFileError) as info:
        ResultsStore(path)
    for word in words:
        assert word in str(info.value), str(info.value)


def test_row_with_wrong_field_count_or_no_run_id_names_its_line(tmp_path):
    path = tmp_path / "runs.csv"
    store = ResultsStore(path)
    for rid in ("a", "b", "c"):
        store.append(_row(rid))
    lines = path.read_text().split("\n")
    _write(path, "\n".join(lines[:2] + [lines[2] + ",extra"] + lines[3:]))
    with pytest.raises(ResultsFileError, match="line 3 has 27 fields, expected 26"):
        store.rows()
    _write(path, "\n".join(lines[:3] + [lines[3].replace(",c,", ",,", 1)] + lines[4:]))
    with pytest.raises(ResultsFileError, match="line 4 has no run_id"):
        store.rows()


def test_completed_ids(tmp_path):
    store = ResultsStore(tmp_path / "runs.csv")
    store.append(_row("a", status="ok"))
    store.append(_row("b", status="failed", error="OOM"))
    store.append(_row("c", status="failed"))
    store.append(_row("c", status="ok", finished_at="2024-01-02T00:00:00+00:00"))
    assert store.completed_ids() == {"a", "c"}
    assert store.completed_ids(include_failed=True) == {"a", "b", "c"}
    deduped = store.read_frame(dedupe=True)
    assert sorted(deduped["run_id"]) == ["a", "b", "c"]
    assert deduped.set_index("run_id").loc["c", "status"] == "ok"


def test_leftover_temp_file_ignored_and_cleaned(tmp_path):
    path = tmp_path / "runs.csv"
    store = ResultsStore(path)
    store.append(_row("a"))
    # a writer killed after writing (part of) its temp file, before os.replace
    stale = tmp_path / ".runs.csv.tmp-deadbeef"
    _write(stale, ",".join(COLUMNS) + "\n" + "garbage,half a ro")
    assert [r["run_id"] for r in ResultsStore(path).rows()] == ["a"]
    store.append(_row("b"))
    assert [r["run_id"] for r in store.rows()] == ["a", "b"]
    assert not stale.exists()
    assert _temps(tmp_path) == []


def test_disk_full_during_append_keeps_the_file(tmp_path):
    """ENOSPC while the new file is flushed: the old file stays byte for byte, no temp file is left."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.faults import enospc_on_fsync

    path = tmp_path / "runs.csv"
    store = ResultsStore(path)
    store.append(_row("a"))
    before = path.read_bytes()
    with enospc_on_fsync(after=0) as fault:
        with pytest.raises(OSError, match="No space left on device"):
            store.append(_row("b"))
    assert fault["raised"] == 1
    assert path.read_bytes() == before and _temps(tmp_path) == []
    store.append(_row("b"))
    assert [r["run_id"] for r in store.rows()] == ["a", "b"]


def _appender(path, worker, n):
    store = ResultsStore(path)
    for i in range(n):
        store.append(_row(f"w{worker}-{i}", seed=i))


def test_concurrent_appends_lose_nothing(tmp_path):
    path = str(tmp_path / "runs.csv")
    ctx = _ctx()
    procs = [ctx.Process(target=_appender, args=(path, w, 25)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    rows = ResultsStore(path).rows()
    assert len(rows) == 100
    assert len({r["run_id"] for r in rows}) == 100
    assert _temps(tmp_path) == []


def _append_forever(path):
    store = ResultsStore(path)
    i = 0
    while True:
        store.append(_row(f"k{i}", error="x" * 200))
        i += 1


def test_kill_9_leaves_complete_file(tmp_path):
    path = str(tmp_path / "runs.csv")
    ResultsStore(path).append(_row("first"))
    ctx = _ctx()
    count = 1
    for delay in (0.0, 0.013, 0.021):
        proc = ctx.Process(target=_append_forever, args=(path,))
        proc.start()
        deadline = time.monotonic() + 60
        while len(ResultsStore(path).rows()) <= count and time.monotonic() < deadline:
            time.sleep(0.005)  # kill only once the writer is appending (a spawned child takes a while to start)
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
        rows = ResultsStore(path).rows()  # parses completely, right header/schema
        assert len(rows) > count  # the kill hit a writer that had appended, and nothing before it was lost
        assert rows[0]["run_id"] == "first"
        assert all(r["error"] == "x" * 200 for r in rows[1:])
        count = len(rows)
    store = ResultsStore(path)
    before = len(store.rows())
    store.append(_row("after"))  # lock was released by the kill; temps get cleaned
    assert len(store.rows()) == before + 1
    assert _temps(tmp_path) == []


def test_merge_dedup_rules(tmp_path):
    a = ResultsStore(tmp_path / "a.csv")
    b = ResultsStore(tmp_path / "b.csv")
    # x: ok in a beats a later failed in b
    a.append(_row("x", status="ok", finished_at="2024-01-01T00:00:00+00:00", score=0.1))
    b.append(_row("x", status="failed", finished_at="2024-02-01T00:00:00+00:00"))
    # y: both ok -> latest finished_at (b), even across time zones
    a.append(_row("y", status="ok", finished_at="2024-01-01T12:00:00+00:00", score=0.2))
    b.append(_row("y", status="ok", finished_at="2024-01-01T13:30:00+01:00", score=0.3))  # 12:30 UTC
    # z: both failed -> latest
    a.append(_row("z", status="failed", finished_at="2024-03-01T00:00:00+00:00", error="late"))
    b.append(_row("z", status="failed", finished_at="2024-01-01T00:00:00+00:00", error="early"))
    # only in one source
    b.append(_row("w", status="ok"))
    dest = tmp_path / "out" / "runs.csv"
    n = merge_results([tmp_path / "a.csv", tmp_path / "b.csv"], dest)
    assert n == 4
    merged = {r["run_id"]: r for r in ResultsStore(dest).rows()}
    assert set(merged) == {"x", "y", "z", "w"}
    assert merged["x"]["status"] == "ok" and merged["x"]["score"] == "0.1"
    assert merged["y"]["score"] == "0.3"
    assert merged["z"]["error"] == "late"
    # idempotent: merging again (dest rows kept) changes nothing
    assert merge_results([tmp_path / "b.csv"], dest) == 4
    assert {r["run_id"]: r for r in ResultsStore(dest).rows()} == merged
    assert _temps(dest.parent) == []


def test_merge_validates_sources(tmp_path):
    good = ResultsStore(tmp_path / "good.csv")
    good.append(_row("x"))
    bad = tmp_path / "bad.csv"
    _write(bad, "hello,world\n")
    with pytest.raises(ResultsFileError, match="bad.csv"):
        merge_results([tmp_path / "good.csv", bad], tmp_path / "dest.csv")
    assert not (tmp_path / "dest.csv").exists()
    with pytest.raises(FileNotFoundError):
        merge_results([tmp_path / "missing.csv"], tmp_path / "dest.csv")


def test_predictions_roundtrip(tmp_path):
    pred = np.array([0, 1, 1, 2])
    labels = np.array([0, 1, 2, 2])
    path = save_predictions(tmp_path, "abc123", pred, labels)
    assert path == os.path.join(str(tmp_path), "predictions", "abc123.npz")
    got = load_predictions(tmp_path, "abc123")
    assert got is not None
    np.testing.assert_array_equal(got[0], pred)
    np.testing.assert_array_equal(got[1], labels)
    assert got[1].dtype == labels.dtype
    assert load_predictions(tmp_path, "missing") is None
    assert _temps(tmp_path / "predictions") == []
    with pytest.raises(ValueError):
        save_predictions(tmp_path, "../evil", pred, labels)
    with pytest.raises(ValueError):
        save_predictions(tmp_path, "short", pred, labels[:2])


def test_modules_do_not_import_torch():
    import subprocess
    import sys

    here = os.path.dirname(os.path.abspath(results.__file__))
    # a bare 'harness' package (its __init__ not run), so whatever harness/__init__.py imports does not count
    code = (
        "import importlib, sys, types\n"
        "package = types.ModuleType('harness')\n"
        f"package.__path__ = [{here!r}]\n"
        "sys.modules['harness'] = package\n"
        "for name in ('results', 'stats'):\n"
        "    importlib.import_module('harness.' + name)\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_a_crafted_pickle_in_predictions_is_refused_not_run(tmp_path):
    """Nothing the tool reads back executes code: an .npz whose array is a pickle that would create a
    file on load is refused, and the file never appears."""
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    folder = tmp_path / "predictions"
    folder.mkdir()
    with open(folder / "abc.npz", "wb") as fh:
        np.savez(fh, predictions=np.array([Payload()], dtype=object), labels=np.array([0]))
    with pytest.raises(ValueError, match="pickle"):
        results.load_predictions(tmp_path, "abc")
    assert not marker.exists()
