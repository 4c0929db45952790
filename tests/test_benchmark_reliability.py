"""benchmarks/reliability.py: its fast sections end to end, and the counting of lost/duplicated/differing rows."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `benchmarks` is not an installed package

from benchmarks import reliability  # noqa: E402


def _row(rid, score="0.5", status="ok"):
    return {"run_id": rid, "score": score, "metrics": '{"accuracy":%s}' % score, "status": status}


def test_compare_counts_lost_duplicated_extra_and_differing_rows():
    reference = {"a": ("0.5", '{"accuracy":0.5}'), "b": ("0.5", '{"accuracy":0.5}'), "c": ("0.5", '{"accuracy":0.5}')}
    rows = [_row("a"), _row("a"), _row("b", "0.75"), _row("c", status="failed"), _row("z")]
    assert reliability.compare(rows, reference) == {"rows": 5, "lost": 1, "duplicated": 1, "extra": 1,
                                                    "scores_differ": 1, "failed": 1}


def test_unwritable_and_cache_sections(tmp_path):
    assert reliability.main(["--sections", "unwritable,cache", "--out", str(tmp_path)]) == 0
    figures = json.loads((tmp_path / "reliability.json").read_text())
    unwritable = figures["unwritable"]
    assert unwritable["cases"] >= 2 and unwritable["passed"] == unwritable["cases"], unwritable["detail"]
    assert {"--out is a file", "--out under a file"} <= {c["case"] for c in unwritable["detail"]}
    cache = figures["cache"]
    assert cache["entries"] == 2 and cache["detected"] == 3
    assert [d["damage"] for d in cache["damages"]] == ["flipped byte", "cut in half", "another key's entry"]
    table = (tmp_path / "reliability.md").read_text()
    assert f"| {unwritable['passed']}/{unwritable['cases']} exit 2 with the fix before training" in table
    assert "| 3/3 detected, said, recomputed, same scores |" in table
    readme = (tmp_path / "README.md").read_text()
    assert f"`python -m benchmarks.reliability --sections unwritable,cache --out {tmp_path}`" in readme
