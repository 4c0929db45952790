"""Study files: keys checked by name, flags over the file, parts, and the study.yaml a folder carries."""
import json
import math

import pandas as pd
import pytest

from bench_helpers import TINY, runs
from harness.cli import main
from harness.study import Grid, StudyConfig, StudyError

TINY_STUDY = """\
out: {out}
tasks: toy-sentiment
models: [tiny-bert]
heads: [native, "sla-2:d=16"]
seeds: 1
max-train-samples: 64
max_eval_samples: 40
max_steps: 2
batch_size: 16
"""


def test_keys_values_and_defaults():
    study = StudyConfig.from_mapping({"tasks": "sst2, rte", "max-train-samples": 500, "epochs": "2", "compile": "true",
                                      "baseline": "native,mean", "analyses": ["depth"], "depths": [1, 2, 4]})
    grid = study.grids[0]
    assert grid.tasks == ("sst2", "rte") and grid.max_train_samples == 500 and grid.epochs == 2.0 and grid.compile
    assert grid.depths == "1,2,4" and grid.analyses == ("depth",) and study.baseline == ("native", "mean")
    assert grid.models == Grid().models and grid.head_lr == 1e-3 and study.out == "results/default"


@pytest.mark.parametrize("data, words", [
    ({"epoch": 2}, "unknown key 'epoch'; did you mean 'epochs'?"),
    ({"seeds": "three"}, "'seeds' must be a whole number"),
    ({"epochs": float("nan")}, "'epochs' must be a finite number"),
    ({"lr": "fast"}, "'lr' must be a number"),
    ({"mode": "train"}, "'mode' must be one of finetune, probe"),
    ({"tasks": {"a": 1}}, "'tasks' must be a list"),
    ({"parts": {"tasks": "x"}}, "'parts' must be a non-empty list"),
    ({"parts": [{"out": "x"}]}, "'out' belongs to the whole study"),
    ({"parts": [{}, {"sedes": 1}]}, "parts[1]: unknown key 'sedes'; did you mean 'seeds'?"),
    ({"baseline": ""}, "'baseline' needs a head"),
    (["tasks"], "expected a mapping"),
])
def test_bad_values_name_the_key(data, words):
    with pytest.raises(StudyError, match=None) as error:
        StudyConfig.from_mapping(data, "study.yaml")
    assert words in str(error.value) and str(error.value).startswith("study.yaml")


def test_overrides_win_over_the_file_and_every_part():
    study = StudyConfig.from_mapping({"seeds": 3, "epochs": 1, "parts": [{"tasks": "rte"}, {"tasks": "cifar10", "seeds": 2}]},
                                     overrides={"seeds": 5})
    assert [g.seeds for g in study.grids] == [5, 5] and [g.epochs for g in study.grids] == [1.0, 1.0]
    assert [g.tasks for g in study.grids] == [("rte",), ("cifar10",)]


def test_to_mapping_round_trips_with_shared_keys_on_top():
    study = StudyConfig.from_mapping({"out": "r/x", "precision": "bf16", "seeds": 3,
                                      "parts": [{"tasks": "rte", "max_train_samples": 800},
                                                {"tasks": "cifar10", "models": "vit-small-p4"}]})
    data = study.to_mapping()
    assert data["precision"] == "bf16" and data["seeds"] == 3 and "tasks" not in data
    assert data["parts"] == [{"tasks": ["rte"], "max_train_samples": 800}, {"tasks": ["cifar10"], "models": ["vit-small-p4"]}]
    again = StudyConfig.from_mapping(data)
    assert again.grids == study.grids and again.out == "r/x"


def test_merging_keeps_uncovered_grids_and_drops_covered_ones():
    def cells(grid):  # stand-in for the run_ids of a grid: (task, seed) pairs
        return frozenset((t, s) for t in grid.tasks for s in range(grid.seeds))

    earlier = StudyConfig.from_mapping({"parts": [{"tasks": "rte", "seeds": 3}, {"tasks": "cifar10", "seeds": 3}]})
    more_seeds = StudyConfig.from_mapping({"tasks": "rte", "seeds": 5})
    merged = more_seeds.merged_with(earlier, cells)
    assert [(g.tasks, g.seeds) for g in merged.grids] == [(("cifar10",), 3), (("rte",), 5)]
    fewer = StudyConfig.from_mapping({"tasks": "rte", "seeds": 2}).merged_with(merged, cells)
    assert [(g.tasks, g.seeds) for g in fewer.grids] == [(("cifar10",), 3), (("rte",), 5)]  # nothing new: unchanged


def test_run_from_a_study_file_and_resume_from_the_folders_copy(tmp_path, capsys):
    out = tmp_path / "out"
    config = tmp_path / "study.yaml"
    config.write_text(TINY_STUDY.format(out=out))
    assert main(["--config", str(config)]) == 0
    assert len(runs(out)) == 2
    carried = StudyConfig.load(out / "study.yaml")
    assert carried.grids == StudyConfig.load(config).grids and carried.out == str(out)
    assert main(["--config", str(out / "study.yaml")]) == 0  # the folder's own file resumes its study
    assert "0 run now" in capsys.readouterr().out
    assert main(["--config", str(config), "--seeds", "2"]) == 0  # a flag overrides the file
    assert len(runs(out)) == 4 and runs(out)["run_id"].is_unique
    assert StudyConfig.load(out / "study.yaml").grids[0].seeds == 2  # the grid of 2 seeds covers that of 1


def test_a_study_file_names_the_same_run_ids_as_the_flags(tmp_path):
    """A study written as flags and as a file is one study: the file resumes what the flags ran."""
    out = tmp_path / "out"
    assert main(["--tasks", "toy-sentiment", "--models", "tiny-bert", "--heads", "native,sla-2:d=16", "--seeds", "1",
                 "--out", str(out), *TINY]) == 0
    first = set(runs(out)["run_id"])
    config = tmp_path / "study.json"
    config.write_text(json.dumps({"out": str(out), "tasks": ["toy-sentiment"], "models": ["tiny-bert"],
                                  "heads": ["native", "sla-2:d=16"], "seeds": 1, "max_train_samples": 64,
                                  "max_eval_samples": 40, "max_steps": 2, "batch_size": 16}))
    assert main(["--config", str(config)]) == 0
    assert set(runs(out)["run_id"]) == first and len(runs(out)) == 2


@pytest.mark.parametrize("text, words", [
    ("tasks: [toy-sentiment\n", "not valid YAML at line"),
    ("!!python/object/apply:os.system ['echo hacked']\n", "not valid YAML"),
    ("epoch: 1\n", "unknown key 'epoch'; did you mean 'epochs'?"),
    ("heads: [native, nope-3]\n", "nope"),
])
def test_bad_study_files_exit_2_and_write_nothing(tmp_path, capsys, text, words):
    out = tmp_path / "out"
    config = tmp_path / "study.yaml"
    config.write_text(f"out: {out}\n" + text)
    assert main(["--config", str(config)]) == 2
    assert words in capsys.readouterr().err
    assert not out.exists()


def test_missing_study_file_exits_2(tmp_path, capsys):
    assert main(["--config", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read the study file" in capsys.readouterr().err


def test_the_folders_copy_spells_out_every_key(tmp_path):
    """OUT/study.yaml names defaults too, so it keeps its meaning whatever later defaults become."""
    out = tmp_path / "out"
    config = tmp_path / "study.yaml"
    config.write_text(TINY_STUDY.format(out=out))
    assert main(["--config", str(config)]) == 0
    import yaml

    written = yaml.safe_load((out / "study.yaml").read_text())
    assert written["head_lr"] == 0.001 and written["precision"] == "no" and written["baseline"] == ["native"]
    assert set(written) == set(Grid().__dataclass_fields__) | {"out", "baseline"}
