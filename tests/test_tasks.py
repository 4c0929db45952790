"""Tests of the tasks package: offline, on tiny generated parquet files in tmp_path."""

from __future__ import annotations

import io
import math
import textwrap

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from tasks import (
    Task,
    TaskDataError,
    TaskPluginError,
    UnknownTaskError,
    available_tasks,
    get_task,
    load_task_plugins,
    register_task,
)
from tasks import registry as task_registry
from tasks import toy
from tasks.glue import GLUE_TASKS

datasets.disable_progress_bars()

N_ROWS = {"train": 8, "validation": 6, "validation_matched": 7, "validation_mismatched": 6, "test": 6}


# ---------------------------------------------------------------------------- helpers
def glue_features(task: Task) -> datasets.Features:
    feats = {c: datasets.Value("string") for c in task.text_columns}
    feats["label"] = (
        datasets.Value("float32") if task.is_regression else datasets.ClassLabel(names=list(task.label_names))
    )
    feats["idx"] = datasets.Value("int32")
    return datasets.Features(feats)


def glue_rows(task: Task, n: int) -> dict:
    rows = {c: [f"{c} number {i} ." for i in range(n)] for c in task.text_columns}
    rows["label"] = [i * 0.5 for i in range(n)] if task.is_regression else [i % task.num_labels for i in range(n)]
    rows["idx"] = list(range(n))
    return rows


def png(seed: int) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, mode="RGB").save(buf, format="PNG")
    return buf.getvalue()


def write(path, rows: dict, features: datasets.Features | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_dict(rows, features=features).to_parquet(str(path))


def write_glue(root, task: Task, splits=None, rows_fn=glue_rows, features=None):
    for split in splits or task.splits:
        write(root / "glue" / task.name / f"{split}.parquet", rows_fn(task, N_ROWS[split]), features or glue_features(task))


def write_cifar(root, task: Task):
    feats = datasets.Features(
        {"img": datasets.Image(), task.label_column: datasets.ClassLabel(names=list(task.label_names))}
    )
    for split in task.splits:
        n = N_ROWS[split]
        rows = {"img": [{"bytes": png(i), "path": None} for i in range(n)],
                task.label_column: [(3 * i) % task.num_labels for i in range(n)]}
        write(root / task.local_subdir / f"{split}.parquet", rows, feats)


@pytest.fixture
def cache(tmp_path):
    return str(tmp_path / "hf_cache")


@pytest.fixture
def clean_registry():
    """Undo any registration a test makes."""
    saved = dict(task_registry._REGISTRY)
    saved_files = dict(task_registry._LOADED_FILES)
    yield
    task_registry._REGISTRY.clear()
    task_registry._REGISTRY.update(saved)
    task_registry._LOADED_FILES.clear()
    task_registry._LOADED_FILES.update(saved_files)


# ---------------------------------------------------------------------------- registry contents
def test_builtin_tasks_registered():
    names = available_tasks()
    assert names == sorted(names)
    for n in (*GLUE_TASKS, "cifar10", "cifar100", "toy-sentiment", "digits"):
        assert n in names
    assert available_tasks("image") == ["cifar10", "cifar100", "digits"]
    assert get_task("SST2") is get_task("sst2")
    t = get_task("mnli")
    assert (t.text_columns, t.num_labels, t.eval_splits, t.primary_eval_split) == (
        ("premise", "hypothesis"), 3, ("validation_matched", "validation_mismatched"), "validation_matched")
    assert get_task("qqp").text_columns == ("question1", "question2")
    assert get_task("qnli").text_columns == ("question", "sentence")
    assert get_task("stsb").is_regression and get_task("stsb").num_labels == 1
    assert get_task("cifar100").label_column == "fine_label" and len(get_task("cifar100").label_names) == 100
    assert get_task("sst2").hub_path == "nyu-mll/glue" and get_task("sst2").hub_config == "sst2"
    assert get_task("cifar10").columns == ("img", "label")
    summary = get_task("stsb").summary()
    assert summary["metrics"] == ["pearson", "spearmanr"] and summary["is_regression"] is True


# ---------------------------------------------------------------------------- GLUE / CIFAR loading
@pytest.mark.parametrize("name", GLUE_TASKS)
def test_glue_local_load(tmp_path, cache, name):
    task = get_task(name)
    write_glue(tmp_path, task)
    data = task.load(data_dir=tmp_path, cache_dir=cache)
    assert list(data) == list(task.splits)
    for split in task.splits:
        ds = data[split]
        assert ds.num_rows == N_ROWS[split]
        assert ds.column_names == [*task.text_columns, "label", "idx"]
        assert ds[0][task.text_columns[0]] == f"{task.text_columns[0]} number 0 ."
        if task.is_regression:
            assert ds.features["label"] == datasets.Value("float32")
            assert ds["label"][:3] == [0.0, 0.5, 1.0]
        else:
            assert isinstance(ds.features["label"], datasets.ClassLabel)
            assert tuple(ds.features["label"].names) == task.label_names
            assert ds["label"][:4] == [i % task.num_labels for i in range(4)]
    # one split only
    only = task.load(data_dir=tmp_path, splits=[task.primary_eval_split], cache_dir=cache)
    assert list(only) == [task.primary_eval_split]


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_local_load(tmp_path, cache, name):
    task = get_task(name)
    write_cifar(tmp_path, task)
    data = task.load(data_dir=tmp_path, cache_dir=cache)
    assert list(data) == ["train", "test"]
    assert (data["train"].num_rows, data["test"].num_rows) == (8, 6)
    test = data["test"]
    assert test.column_names == ["img", task.label_column]
    assert isinstance(test.features["img"], datasets.Image)
    assert test.features[task.label_column].num_classes == task.num_labels
    img = test[2]["img"]
    assert isinstance(img, Image.Image) and img.size == (32, 32) and img.mode == "RGB"
    assert np.array_equal(np.asarray(img), np.asarray(Image.open(io.BytesIO(png(2)))))
    assert test[task.label_column][:4] == [0, 3, 6 % task.num_labels, 9 % task.num_labels]


def test_parquet_without_hf_metadata_is_normalised(tmp_path, cache):
    """Plain parquet (struct image column, int64 labels, no feature metadata) gets Image/ClassLabel."""
    task = get_task("cifar10")
    for split in ("train", "test"):
        table = pa.table({
            "img": pa.array([{"bytes": png(i), "path": None} for i in range(4)],
                            type=pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
            "label": pa.array([0, 9, 1, 2], type=pa.int64()),
        })
        (tmp_path / "cifar10").mkdir(exist_ok=True)
        pq.write_table(table, tmp_path / "cifar10" / f"{split}.parquet")
    ds = task.load(data_dir=tmp_path, cache_dir=cache)["test"]
    assert isinstance(ds.features["img"], datasets.Image)
    assert ds.features["label"].names[9] == "truck"
    assert isinstance(ds[1]["img"], Image.Image) and ds[1]["label"] == 9


# ---------------------------------------------------------------------------- data errors
def test_missing_column_names_the_column(tmp_path, cache):
    task = get_task("sst2")

    def rows(t, n):
        return {"text": ["a b c"] * n, "label": [0, 1] * (n // 2), "idx": list(range(n))}

    feats = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["n", "p"]),
                               "idx": datasets.Value("int32")})
    write_glue(tmp_path, task, rows_fn=rows, features=feats)
    with pytest.raises(TaskDataError) as err:
        task.load(data_dir=tmp_path, cache_dir=cache)
    msg = str(err.value)
    assert "sst2" in msg and "'train'" in msg and "['sentence']" in msg
    assert "'text'" in msg and "rename" in msg  # columns found, and the fix


def test_missing_directory_names_the_path(tmp_path, cache):
    with pytest.raises(TaskDataError) as err:
        get_task("rte").load(data_dir=tmp_path / "nowhere", cache_dir=cache)
    msg = str(err.value)
    assert str(tmp_path / "nowhere" / "glue" / "rte" / "train.parquet") in msg
    assert "DIR/glue/<task>/<split>.parquet" in msg and "DIR/cifar10/<split>.parquet" in msg


def test_missing_split_file_names_the_path(tmp_path, cache):
    task = get_task("mrpc")
    write_glue(tmp_path, task, splits=["train"])
    with pytest.raises(TaskDataError) as err:
        task.load(data_dir=tmp_path, cache_dir=cache)
    msg = str(err.value)
    assert str(tmp_path / "glue" / "mrpc" / "validation.parquet") in msg and "train.parquet" in msg


def _news(**fields) -> Task:
    return Task(**{**dict(name="news-like", modality="text", num_labels=4, metric="accuracy",
                          text_columns=("text",), local_subdir="news"), **fields})


def _news_rows(t, n):
    return {"text": [f"story {i}" for i in range(n)], "label": [i % 4 for i in range(n)]}


def test_train_and_test_but_no_validation_names_the_eval_splits_fix(tmp_path, cache):
    feats = datasets.Features({"text": datasets.Value("string"), "label": datasets.Value("int64")})
    for split in ("train", "test"):
        write(tmp_path / "news" / f"{split}.parquet", _news_rows(None, N_ROWS[split]), feats)
    with pytest.raises(TaskDataError) as err:
        _news().load(data_dir=tmp_path, cache_dir=cache)
    msg = str(err.value)
    assert str(tmp_path / "news" / "validation.parquet") in msg and "test.parquet" in msg
    assert 'define the task with eval_splits=("test",)' in msg
    assert "DIR/<local_subdir>/<split>.parquet" in msg  # the layout hint is not only GLUE's and CIFAR's
    data = _news(eval_splits=("test",)).load(data_dir=tmp_path, cache_dir=cache)  # the fix works as written
    assert list(data) == ["train", "test"] and data["test"].num_rows == N_ROWS["test"]


def test_loader_without_the_validation_split_names_the_eval_splits_fix(tmp_path, cache):
    (tmp_path / "reviews_train.csv").write_text("sentence,label\ngood,1\nbad,0\n")
    (tmp_path / "reviews_test.csv").write_text("sentence,label\nfine,1\n")

    def csv_loader(task, data_dir, splits):  # as in tasks/README.md: one file per split asked for
        files = {s: str(tmp_path / f"reviews_{s}.csv") for s in splits}
        return datasets.load_dataset("csv", data_files=files, cache_dir=cache)

    def every_split(task, data_dir, splits):  # a loader that returns the splits the data has
        return csv_loader(task, data_dir, ("train", "test"))

    for loader in (csv_loader, every_split):
        task = Task(name="csv-news", modality="text", num_labels=2, metric="accuracy", text_columns=("sentence",),
                    loader=loader)
        with pytest.raises(TaskDataError, match=r"eval_splits=\(\"test\",\)"):
            task.load()
    task = Task(name="csv-news", modality="text", num_labels=2, metric="accuracy", text_columns=("sentence",),
                loader=csv_loader, eval_splits=("test",))
    assert task.load()["test"]["label"] == [1]


@pytest.mark.parametrize("fields,fix", [
    ({"text_columns": ("headlne",)}, 'text_columns=("headline",)'),
    ({"text_columns": ("headline",), "label_column": "labl"}, "label_column='label'"),
])
def test_misspelled_column_gets_did_you_mean_and_fixes_the_definition_first(tmp_path, cache, fields, fix):
    feats = datasets.Features({"headline": datasets.Value("string"), "label": datasets.Value("int64")})
    for split in ("train", "validation"):
        write(tmp_path / "news" / f"{split}.parquet",
              {"headline": ["a", "b", "c", "d"], "label": [0, 1, 2, 3]}, feats)
    with pytest.raises(TaskDataError) as err:
        _news(**fields).load(data_dir=tmp_path, cache_dir=cache)
    msg = str(err.value)
    typo = fields.get("label_column") or fields["text_columns"][0]
    near = "label" if "label_column" in fields else "headline"
    assert f"Did you mean {near!r} for {typo!r}?" in msg
    first_fix = msg.split("Fix:", 1)[1]
    assert first_fix.lstrip().startswith(f"define the task with {fix}")
    assert f"rename_column({near!r}, {typo!r})" not in msg  # never: rename the data to the typo


def test_label_out_of_range(tmp_path, cache):
    task = get_task("cola")
    feats = datasets.Features({"sentence": datasets.Value("string"), "label": datasets.Value("int64"),
                               "idx": datasets.Value("int32")})

    def rows(t, n):
        return {"sentence": ["x"] * n, "label": [0, 1, 2] + [1] * (n - 3), "idx": list(range(n))}

    write_glue(tmp_path, task, rows_fn=rows, features=feats)
    with pytest.raises(TaskDataError, match=r"1 value\(s\) outside \[0, 2\).*max 2"):
        task.load(data_dir=tmp_path, cache_dir=cache)


@pytest.mark.parametrize("column,values,dtype,fix", [
    ("sentence", lambda n: [None] + ["x"] * (n - 1), "string", "fill them with ''"),
    ("sentence", lambda n: list(range(n)), "int64", "convert it to strings"),
    ("label", lambda n: [None] + [1] * (n - 1), "int64", "drop those rows"),
])
def test_bad_column_values_name_the_fix(tmp_path, cache, column, values, dtype, fix):
    task = get_task("cola")
    types = {"sentence": "string", "label": "int64", "idx": "int32", column: dtype}
    feats = datasets.Features({name: datasets.Value(t) for name, t in types.items()})

    def rows(t, n):
        return {"sentence": ["x"] * n, "label": [0, 1] * (n // 2), "idx": list(range(n)), column: values(n)}

    write_glue(tmp_path, task, rows_fn=rows, features=feats)
    with pytest.raises(TaskDataError, match=f"column '{column}'.*{fix}"):
        task.load(data_dir=tmp_path, cache_dir=cache)


def test_unlabeled_minus_one_rejected(tmp_path, cache):
    task = get_task("sst2")

    def rows(t, n):
        return {"sentence": ["x"] * n, "label": [-1] * n, "idx": list(range(n))}

    write_glue(tmp_path, task, rows_fn=rows)  # ClassLabel feature, as in GLUE test splits
    with pytest.raises(TaskDataError, match="-1 marks unlabeled rows"):
        task.load(data_dir=tmp_path, cache_dir=cache)


def test_no_local_layout_and_no_hub():
    t = Task(name="nowhere-task", modality="text", num_labels=2, metric="accuracy", text_columns=("sentence",))
    with pytest.raises(TaskDataError, match="local_subdir"):
        t.load(data_dir="/tmp")
    with pytest.raises(TaskDataError, match="no hub_path"):
        t.load()


def test_invalid_definitions():
    with pytest.raises(ValueError, match="unknown metric"):
        Task(name="x", modality="text", num_labels=2, metric="auc", text_columns=("s",))
    with pytest.raises(ValueError, match="text_columns"):
        Task(name="x", modality="text", num_labels=2, metric="accuracy")
    with pytest.raises(ValueError, match="classification metric"):
        Task(name="x", modality="text", num_labels=1, metric="accuracy", text_columns=("s",))
    with pytest.raises(ValueError, match="label_names"):
        Task(name="x", modality="text", num_labels=3, metric="accuracy", text_columns=("s",), label_names=("a", "b"))
    t = Task(name="x", modality="text", num_labels=2, metric="accuracy", text_columns=["s"])
    assert t.text_columns == ("s",) and hash(t) == hash(Task(name="x", modality="text", num_labels=2,
                                                             metric="accuracy", text_columns=("s",)))


# ---------------------------------------------------------------------------- metrics
def test_matthews_hand_computed():
    # TP=2 (i0,i4) FP=1 (i1) TN=2 (i2,i5) FN=1 (i3): (2*2-1*1)/sqrt(3*3*3*3) = 1/3
    m = get_task("cola").compute_metrics(np.array([1, 1, 0, 0, 1, 0]), np.array([1, 0, 0, 1, 1, 0]))
    assert list(m) == ["matthews_correlation"]
    assert m["matthews_correlation"] == pytest.approx(1 / 3)
    assert type(m["matthews_correlation"]) is float
    assert get_task("cola").compute_metrics([1, 1, 1, 1], [1, 0, 1, 0])["matthews_correlation"] == 0.0


def test_accuracy_f1_combined_hand_computed():
    # TP=2 FP=2 FN=1 TN=1: acc 3/6, precision 1/2, recall 2/3, f1 = 4/7
    for name in ("mrpc", "qqp"):
        task = get_task(name)
        m = task.compute_metrics([1, 1, 1, 0, 1, 0], [1, 0, 0, 1, 1, 0])
        assert task.metric == "accuracy"
        assert m["accuracy"] == pytest.approx(0.5)
        assert m["f1"] == pytest.approx(4 / 7)
        assert m["combined"] == pytest.approx((0.5 + 4 / 7) / 2)
        assert all(type(v) is float for v in m.values())
    # logits are arg-maxed; 3 classes
    assert get_task("mnli").compute_metrics(
        np.array([[2.0, 0.1, 0.0], [0.0, 0.0, 5.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]), [0, 2, 1, 0]
    ) == {"accuracy": 0.75}
    assert get_task("cifar10").compute_metrics([3, 3, 9], [3, 1, 9]) == {"accuracy": pytest.approx(2 / 3)}
    with pytest.raises(ValueError, match="differ in length"):
        get_task("sst2").compute_metrics([1, 0], [1, 0, 1])


def test_regression_metrics():
    task = get_task("stsb")
    labels = np.array([0.0, 1.2, 2.5, 3.1, 5.0], dtype=np.float32)
    m = task.compute_metrics(2 * labels + 1, labels)
    assert m["pearson"] == pytest.approx(1.0) and m["spearmanr"] == pytest.approx(1.0)
    assert m["combined"] == pytest.approx(1.0) and task.metric == "pearson"
    # x=[1,2,3], y=[1,3,2]: cov 1, var 2 and 2 -> r = 0.5 (ranks equal the values: rho = 0.5)
    m = task.compute_metrics(np.array([[1.0], [2.0], [3.0]]), [1.0, 3.0, 2.0])
    assert m["pearson"] == pytest.approx(0.5) and m["spearmanr"] == pytest.approx(0.5)
    # monotone but not linear: spearman 1, pearson < 1
    x = np.arange(1.0, 6.0)
    m = task.compute_metrics(x**3, x)
    assert m["spearmanr"] == pytest.approx(1.0) and m["pearson"] < 0.99
    m = task.compute_metrics([2.0, 2.0, 2.0], [1.0, 2.0, 3.0])  # constant: undefined, no crash
    assert math.isnan(m["pearson"]) and math.isnan(m["spearmanr"])


# ---------------------------------------------------------------------------- registry behaviour
def test_unknown_task_lists_names():
    with pytest.raises(UnknownTaskError) as err:
        get_task("sst-3")
    msg = str(err.value)
    assert ", ".join(available_tasks()) in msg
    assert "--task-file" in msg and "Did you mean" in msg
    assert isinstance(err.value, KeyError) and isinstance(err.value, ValueError)


def test_register_twice(clean_registry):
    t = Task(name="dup-task", modality="text", num_labels=2, metric="accuracy", text_columns=("s",))
    register_task(t)
    register_task(Task(name="dup-task", modality="text", num_labels=2, metric="accuracy", text_columns=("s",)))
    other = Task(name="dup-task", modality="text", num_labels=3, metric="accuracy", text_columns=("s",))
    with pytest.raises(ValueError, match="already registered"):
        register_task(other)
    assert get_task("dup-task") is t

    @register_task(replace=True)
    def factory():
        return other

    assert callable(factory) and get_task("dup-task") is other


def test_user_task_file(tmp_path, cache, clean_registry):
    (tmp_path / "reviews_train.csv").write_text("text,sentiment\ngreat film,pos\nawful film,neg\nfine,pos\n")
    (tmp_path / "reviews_validation.csv").write_text("text,sentiment\nbad,neg\ngood,pos\n")
    plugin = tmp_path / "my_task.py"
    plugin.write_text(textwrap.dedent('''
        from pathlib import Path
        import datasets
        from tasks import Task, register_task

        HERE = Path(__file__).parent

        def load_reviews(task, data_dir, splits):
            root = Path(data_dir) if data_dir else HERE
            files = {split: str(root / f"reviews_{split}.csv") for split in splits}
            data = datasets.load_dataset("csv", data_files=files, cache_dir=str(HERE / "hf_cache"))
            return data.rename_columns({"text": "sentence", "sentiment": "label"})

        register_task(Task(name="my-task", modality="text", num_labels=2, metric="accuracy",
                           metrics=("accuracy", "f1"), text_columns=("sentence",),
                           label_names=("neg", "pos"), loader=load_reviews))

        @register_task
        def my_regression():
            return Task(name="my-regression", modality="text", num_labels=1, metric="spearmanr",
                        metrics=("spearmanr",), text_columns=("a", "b"), local_subdir="myreg")
    '''))
    assert load_task_plugins([plugin]) == ["my-regression", "my-task"]
    assert load_task_plugins([str(plugin)]) == []  # imported once only
    task = get_task("my-task")
    assert "my-task" in available_tasks()
    data = task.load()
    assert (data["train"].num_rows, data["validation"].num_rows) == (3, 2)
    assert data["train"]["label"] == [1, 0, 1] and data["train"].features["label"].names == ["neg", "pos"]
    assert data["validation"][0] == {"sentence": "bad", "label": 0}
    assert task.compute_metrics([1, 1], data["validation"]["label"]) == {
        "accuracy": 0.5, "f1": pytest.approx(2 / 3), "combined": pytest.approx((0.5 + 2 / 3) / 2)}
    assert get_task("my-regression").is_regression


def test_readme_train_test_text_task_works_as_written(tmp_path, cache, clean_registry):
    """tasks/README.md shows a text task whose data has only train and test splits; copied as it is
    into a task file, it loads DIR/news/{train,test}.parquet."""
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "tasks" / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    code = next(b for b in blocks if 'modality="text"' in b and 'eval_splits=("test",)' in b and "loader" not in b)
    (tmp_path / "news.py").write_text(code)
    assert load_task_plugins([tmp_path / "news.py"]) == ["news"]
    task = get_task("news")
    names = list(task.label_names)
    feats = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=names)})
    for split in ("train", "test"):
        write(tmp_path / "data" / "news" / f"{split}.parquet", _news_rows(task, N_ROWS[split]), feats)
    data = task.load(data_dir=tmp_path / "data", cache_dir=cache)
    assert list(data) == ["train", "test"] and task.primary_eval_split == "test"
    assert data["test"].features["label"].names == names


def test_plugin_module_and_errors(tmp_path, monkeypatch, clean_registry):
    (tmp_path / "my_pkg_tasks.py").write_text(
        "from tasks import Task, register_task\n"
        "register_task(Task(name='mod-task', modality='image', num_labels=4, metric='accuracy', image_column='img'))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_task_plugins(["my_pkg_tasks"]) == ["mod-task"]
    assert get_task("mod-task").modality == "image"
    with pytest.raises(TaskPluginError, match="not found"):
        load_task_plugins([tmp_path / "absent.py"])
    with pytest.raises(TaskPluginError, match="no_such_module"):
        load_task_plugins(["no_such_module.tasks"])
    bad = tmp_path / "broken.py"
    bad.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(TaskPluginError, match="boom"):
        load_task_plugins([str(bad)])


def test_entry_points(monkeypatch, clean_registry):
    class FakeEP:
        def __init__(self, name, obj):
            self.name, self.value, self._obj = name, f"pkg:{name}", obj

        def load(self):
            if isinstance(self._obj, Exception):
                raise self._obj
            return self._obj

    ep_task = Task(name="ep-task", modality="text", num_labels=2, metric="accuracy", text_columns=("s",))
    fake = [FakeEP("one", ep_task), FakeEP("broken", ImportError("missing dep")),
            FakeEP("factory", lambda: [Task(name="ep-two", modality="text", num_labels=2, metric="accuracy",
                                            text_columns=("s",))])]
    monkeypatch.setattr(task_registry.importlib.metadata, "entry_points",
                        lambda group: fake if group == "sla_bench.tasks" else [])
    monkeypatch.setattr(task_registry, "_entry_points_loaded", False)
    with pytest.warns(UserWarning, match="broken"):
        assert get_task("ep-task") is ep_task
    assert "ep-two" in available_tasks()


# ---------------------------------------------------------------------------- toy tasks
POS, NEG = set(toy._POSITIVE), set(toy._NEGATIVE)


def rescore(sentence: str) -> int:
    """Independent re-implementation of the toy-sentiment labelling rule."""
    words = sentence.split()
    hits = [i for i, w in enumerate(words) if w in POS or w in NEG]
    assert len(hits) == 1, sentence  # exactly one sentiment adjective
    i = hits[0]
    intens = words[i - 1] in toy._INTENSIFIERS
    negated = words[i - 2 if intens else i - 1] in toy._NEGATORS
    return int((words[i] in POS) != negated)


def test_toy_sentiment():
    task = get_task("toy-sentiment")
    data = task.load(data_dir="/ignored")
    train, val = data["train"], data["validation"]
    assert (train.num_rows, val.num_rows) == (2000, 500)
    assert train.column_names == ["sentence", "label", "idx"]
    assert train.features["label"].names == ["negative", "positive"]
    for ds in (train, val):
        assert 0.4 < np.mean(ds["label"]) < 0.6
        lengths = [len(s.split()) for s in ds["sentence"]]
        assert min(lengths) >= 6 and max(lengths) <= 20 and len(set(lengths)) >= 10
        assert [rescore(s) for s in ds["sentence"]] == ds["label"]
    assert not set(train["sentence"]) & set(val["sentence"])
    # negation is frequent, and not only in front of the sentiment adjective
    negated = [any(w in toy._NEGATORS for w in s.split()) for s in train["sentence"]]
    assert 0.4 < np.mean(negated) < 0.7
    flips = [rescore(s) != (next(w for w in s.split() if w in POS or w in NEG) in POS) for s in train["sentence"]]
    assert 0.3 < np.mean(flips) < 0.5 and np.mean(flips) < np.mean(negated)
    # deterministic, also when regenerated from scratch
    first = train["sentence"][:50]
    toy._sentiment_rows.cache_clear()
    again = task.load()
    assert again["train"]["sentence"][:50] == first and again["validation"]["label"] == val["label"]


def test_digits():
    task = get_task("digits")
    data = task.load()
    train, test = data["train"], data["test"]
    assert (train.num_rows, test.num_rows) == (1397, 400)
    assert list(data) == ["train", "test"] and train.column_names == ["img", "label"]
    counts = np.bincount(test["label"], minlength=10)
    assert counts.min() >= 39 and counts.max() <= 41  # stratified: ~40 per digit
    assert np.bincount(train["label"], minlength=10).min() >= 130
    img = test[0]["img"]
    assert isinstance(img, Image.Image) and img.size == (32, 32) and img.mode == "RGB"
    arr = np.asarray(img)
    assert arr.max() > 200 and arr.min() == 0 and (arr[..., 0] == arr[..., 1]).all()
    labels = test["label"]
    toy._digits_rows.cache_clear()
    again = task.load(splits=["test"])
    assert list(again) == ["test"] and again["test"]["label"] == labels
    assert again["test"].with_format("arrow")["img"].to_pylist()[:5] == test.with_format("arrow")["img"].to_pylist()[:5]
