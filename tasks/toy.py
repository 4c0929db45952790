"""Two small tasks built in memory, with no download: the offline demo and test tasks.

``toy-sentiment`` (text, 2 labels; splits train 2000 / validation 500; columns ``sentence``,
``label``, ``idx`` like GLUE SST-2). Sentences of 6-20 words are generated from a small
vocabulary with a fixed seed: one sentiment clause ("the plot was not very dull") among 0-2
neutral clauses ("the theater... the runtime was not long"), joined by "and"/"but"/"while"/
"although", then padded at the end with neutral filler phrases ("in my opinion") to a random
length. The label is the polarity of the sentiment adjective (12 positive, 12 negative), flipped
when a negator ("not", "never", "hardly") precedes it (an intensifier "very", "really", ... may
sit in between and changes nothing). Neutral clauses may be negated too, so neither the
adjective nor "not" alone gives the label (unigram logistic regression: ~60% on validation);
a 2-layer transformer (d=64) trained from scratch on one CPU core reaches 85-90% in a minute. Words
vary in length ("incomprehensible", "cinematography"), and so do sentences: padding matters.

``digits`` (image, 10 labels; splits train 1397 / test 400, stratified, fixed seed; columns
``img``, ``label`` like CIFAR-10): scikit-learn's 8x8 handwritten digits (1,797 images, bundled
with scikit-learn), grey levels 0-16 scaled to 0-255, upscaled to 32x32 (bilinear) and stored as
RGB PNG in a datasets ``Image()`` column.

Both ignore ``data_dir``, write nothing to disk and build in well under 2 s; the generated
rows are cached in memory (a fresh ``DatasetDict`` is built on each ``load``).
"""

from __future__ import annotations

import functools
import io

import numpy as np

from .base import Task
from .generated import dataset_dict, sentence_dataset_dict
from .registry import register_task

# ---------------------------------------------------------------------------- toy-sentiment
SENTIMENT_SEED = 20240601
SENTIMENT_SIZES = {"train": 2000, "validation": 500}

_SUBJECTS = (
    "the movie", "this film", "the plot", "the acting", "the soundtrack", "the ending", "the cast",
    "the script", "the cinematography", "the dialogue", "it", "the story", "the lead actor",
    "the special effects", "the pacing",
)
_VERBS = ("was", "is", "seemed", "felt", "looked", "sounded", "remained")
_NEGATORS = ("not", "never", "hardly")
_INTENSIFIERS = ("very", "really", "extremely", "incredibly", "remarkably")
_POSITIVE = (
    "good", "great", "fun", "superb", "wonderful", "brilliant", "charming", "delightful",
    "enjoyable", "masterful", "breathtaking", "heartwarming",
)
_NEGATIVE = (
    "bad", "dull", "awful", "boring", "terrible", "weak", "tedious", "clumsy", "dreadful",
    "forgettable", "underwhelming", "incomprehensible",
)
_NEUTRAL = (
    "long", "short", "loud", "quiet", "colorful", "expensive", "crowded", "dark", "familiar",
    "unconventional", "animated", "subtitled",
)
_CONJUNCTIONS = ("and", "but", "while", "although")
_FILLERS = (
    "honestly", "overall", "frankly", "basically", "admittedly", "arguably", "somehow", "again",
    "today", "to be honest", "in my opinion",
    "from start to finish", "for the most part", "at times", "i think", "if you ask me",
    "all things considered", "in the end", "on the whole", "as far as i can tell",
)
_MIN_WORDS, _MAX_WORDS = 6, 20
_P_NEGATED = 0.4  # sentiment clause negated
_P_NEGATED_NEUTRAL = 0.25  # neutral clause negated: "not" alone does not flip the label
_P_N_NEUTRAL = (0.4, 0.4, 0.2)  # 0, 1 or 2 neutral clauses


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _clause(rng: np.random.Generator, adjectives: tuple[str, ...], p_neg: float, p_int: float):
    words = _pick(rng, _SUBJECTS).split() + [_pick(rng, _VERBS)]
    negated = bool(rng.random() < p_neg)
    if negated:
        words.append(_pick(rng, _NEGATORS))
    if rng.random() < p_int:
        words.append(_pick(rng, _INTENSIFIERS))
    words.append(_pick(rng, adjectives))
    return words, negated


def _sentence(rng: np.random.Generator) -> tuple[str, int]:
    """One sentiment clause (label = polarity, flipped by negation) among 0-2 neutral clauses."""
    while True:
        positive = bool(rng.random() < 0.5)
        sentiment, negated = _clause(rng, _POSITIVE if positive else _NEGATIVE, _P_NEGATED, 0.3)
        clauses = [sentiment]
        for _ in range(int(rng.choice([0, 1, 2], p=_P_N_NEUTRAL))):
            clauses.append(_clause(rng, _NEUTRAL, _P_NEGATED_NEUTRAL, 0.2)[0])
        order = rng.permutation(len(clauses))
        words: list[str] = []
        for k, i in enumerate(order):
            if k:
                words.append(_pick(rng, _CONJUNCTIONS))
            words += clauses[i]
        if len(words) > _MAX_WORDS:
            continue
        target = int(rng.integers(max(len(words), _MIN_WORDS), _MAX_WORDS + 1))
        used: set[str] = set()
        while len(words) < target:
            fits = tuple(f for f in _FILLERS if len(f.split()) <= target - len(words) and f not in used)
            if not fits:
                break
            filler = _pick(rng, fits)
            used.add(filler)
            # appended, never prepended: shifting the sentiment clause by a varying prefix makes the
            # task much harder for a small transformer with learned absolute positions
            words += filler.split()
        return " ".join(words), int(positive != negated)


@functools.lru_cache(maxsize=1)
def _sentiment_rows() -> dict[str, tuple[tuple[str, ...], tuple[int, ...]]]:
    rng = np.random.default_rng(SENTIMENT_SEED)
    seen: set[str] = set()
    out = {}
    for split, n in SENTIMENT_SIZES.items():  # train first, then validation: no overlap
        sentences: list[str] = []
        labels: list[int] = []
        while len(sentences) < n:
            s, y = _sentence(rng)
            if s in seen:
                continue
            seen.add(s)
            sentences.append(s)
            labels.append(y)
        out[split] = (tuple(sentences), tuple(labels))
    return out


def _load_toy_sentiment(task: Task, data_dir, splits):
    return sentence_dataset_dict(task, _sentiment_rows(), splits)


TOY_SENTIMENT = register_task(Task(
    name="toy-sentiment",
    modality="text",
    num_labels=2,
    metric="accuracy",
    text_columns=("sentence",),
    label_names=("negative", "positive"),
    eval_splits=("validation",),
    loader=_load_toy_sentiment,
    description="Generated sentiment sentences with negation and intensifiers (offline, 2000/500).",
))

# ---------------------------------------------------------------------------- digits
DIGITS_SEED = 0
DIGITS_TEST_SIZE = 400
DIGITS_IMAGE_SIZE = 32


@functools.lru_cache(maxsize=1)
def _digits_rows() -> dict[str, tuple[tuple[bytes, ...], tuple[int, ...]]]:
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = np.rint(digits.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    target = digits.target.astype(np.int64)
    pngs = []
    for img in images:
        pil = Image.fromarray(img, mode="L").resize(
            (DIGITS_IMAGE_SIZE, DIGITS_IMAGE_SIZE), Image.Resampling.BILINEAR
        ).convert("RGB")
        buf = io.BytesIO()
        pil.save(buf, format="PNG")
        pngs.append(buf.getvalue())
    train_idx, test_idx = train_test_split(
        np.arange(len(target)), test_size=DIGITS_TEST_SIZE, stratify=target, random_state=DIGITS_SEED
    )
    return {
        split: (tuple(pngs[i] for i in np.sort(idx)), tuple(int(target[i]) for i in np.sort(idx)))
        for split, idx in (("train", train_idx), ("test", test_idx))
    }


def _load_digits(task: Task, data_dir, splits):
    import datasets

    features = datasets.Features(
        {"img": datasets.Image(), "label": datasets.ClassLabel(names=list(task.label_names or ()))}
    )
    columns = {split: {"img": [{"bytes": b, "path": None} for b in images], "label": list(labels)}
               for split, (images, labels) in _digits_rows().items()}
    return dataset_dict(columns, splits, features)


DIGITS = register_task(Task(
    name="digits",
    modality="image",
    num_labels=10,
    metric="accuracy",
    image_column="img",
    label_column="label",
    eval_splits=("test",),
    label_names=tuple(str(d) for d in range(10)),
    loader=_load_digits,
    description="scikit-learn 8x8 handwritten digits as 32x32 RGB images (offline, 1397/400).",
))
