"""GLUE tasks (Wang et al., ICLR 2019), as in the Hugging Face dataset ``nyu-mll/glue``.

Column names, label ids and split names are HF's exactly. Locally the data is read from
``<data_dir>/glue/<task>/<split>.parquet``. Test splits are never loaded (their labels are -1).

Copy this pattern for a task of your own: one ``register_task(Task(...))`` per task.
"""

from __future__ import annotations

from .base import Task
from .registry import register_task

GLUE_HUB_PATH = "nyu-mll/glue"


def glue_task(
    name: str,
    text_columns: tuple[str, ...],
    label_names: tuple[str, ...] | None,
    metric: str,
    description: str,
    metrics: tuple[str, ...] = (),
    eval_splits: tuple[str, ...] = ("validation",),
) -> Task:
    return Task(
        name=name,
        modality="text",
        num_labels=len(label_names) if label_names else 1,
        metric=metric,
        metrics=metrics,
        text_columns=text_columns,
        label_names=label_names,
        eval_splits=eval_splits,
        hub_path=GLUE_HUB_PATH,
        hub_config=name,
        local_subdir=f"glue/{name}",
        description=description,
    )


COLA = register_task(glue_task(
    "cola", ("sentence",), ("unacceptable", "acceptable"), "matthews_correlation",
    "Corpus of Linguistic Acceptability: is the sentence grammatical?",
))
SST2 = register_task(glue_task(
    "sst2", ("sentence",), ("negative", "positive"), "accuracy",
    "Stanford Sentiment Treebank: binary sentiment of movie-review sentences.",
))
MRPC = register_task(glue_task(
    "mrpc", ("sentence1", "sentence2"), ("not_equivalent", "equivalent"), "accuracy",
    "Microsoft Research Paraphrase Corpus: are the two sentences paraphrases?",
    metrics=("accuracy", "f1"),
))
QQP = register_task(glue_task(
    "qqp", ("question1", "question2"), ("not_duplicate", "duplicate"), "accuracy",
    "Quora Question Pairs: are the two questions duplicates?",
    metrics=("accuracy", "f1"),
))
STSB = register_task(glue_task(
    "stsb", ("sentence1", "sentence2"), None, "pearson",
    "Semantic Textual Similarity Benchmark: similarity score 0-5 (regression).",
    metrics=("pearson", "spearmanr"),
))
MNLI = register_task(glue_task(
    "mnli", ("premise", "hypothesis"), ("entailment", "neutral", "contradiction"), "accuracy",
    "Multi-Genre NLI: entailment / neutral / contradiction; matched and mismatched dev sets.",
    eval_splits=("validation_matched", "validation_mismatched"),
))
QNLI = register_task(glue_task(
    "qnli", ("question", "sentence"), ("entailment", "not_entailment"), "accuracy",
    "Question NLI (from SQuAD): does the sentence answer the question?",
))
RTE = register_task(glue_task(
    "rte", ("sentence1", "sentence2"), ("entailment", "not_entailment"), "accuracy",
    "Recognizing Textual Entailment.",
))
WNLI = register_task(glue_task(
    "wnli", ("sentence1", "sentence2"), ("not_entailment", "entailment"), "accuracy",
    "Winograd NLI: does the sentence with the pronoun substituted follow?",
))

GLUE_TASKS = ("cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte", "wnli")
