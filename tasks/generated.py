"""Shared by the tasks that generate their rows in memory (toy-sentiment, digits, pointer-H)."""
from __future__ import annotations


def dataset_dict(columns_by_split: dict, splits, features):
    """A DatasetDict of the requested ``splits`` from ``{split: {column: values}}``."""
    import datasets

    return datasets.DatasetDict({split: datasets.Dataset.from_dict(columns_by_split[split], features=features, split=split)
                                 for split in splits if split in columns_by_split})


def sentence_dataset_dict(task, rows: dict, splits):
    """Text rows ``{split: (sentences, labels)}`` as columns ``sentence``, ``label`` (ClassLabel), ``idx``."""
    import datasets

    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=list(task.label_names or ())),
                                  "idx": datasets.Value("int32")})
    columns = {split: {"sentence": list(sentences), "label": list(labels), "idx": list(range(len(sentences)))}
               for split, (sentences, labels) in rows.items()}
    return dataset_dict(columns, splits, features)
