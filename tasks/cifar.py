"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009), as in the HF datasets ``uoft-cs/cifar10`` / ``uoft-cs/cifar100``.

Images are in column ``img`` (datasets ``Image()``: 32x32 RGB ``PIL.Image`` on access). Locally:
``<data_dir>/cifar10/{train,test}.parquet`` (and ``cifar100/`` likewise).
"""

from __future__ import annotations

from .base import Task
from .registry import register_task

CIFAR10_LABELS = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

CIFAR100_LABELS = tuple(
    """apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel
    can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur
    dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion
    lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree
    pear pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea
    seal shark shrew skunk skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table
    tank telephone television tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman
    worm""".split()
)
assert len(CIFAR100_LABELS) == 100 and len(set(CIFAR100_LABELS)) == 100

CIFAR10 = register_task(Task(
    name="cifar10",
    modality="image",
    num_labels=10,
    metric="accuracy",
    image_column="img",
    label_column="label",
    eval_splits=("test",),
    hub_path="uoft-cs/cifar10",
    hub_config=None,
    local_subdir="cifar10",
    label_names=CIFAR10_LABELS,
    description="CIFAR-10: 32x32 colour images in 10 classes (50k train / 10k test).",
))

CIFAR100 = register_task(Task(
    name="cifar100",
    modality="image",
    num_labels=100,
    metric="accuracy",
    image_column="img",
    label_column="fine_label",
    eval_splits=("test",),
    hub_path="uoft-cs/cifar100",
    hub_config=None,
    local_subdir="cifar100",
    label_names=CIFAR100_LABELS,
    description="CIFAR-100: 32x32 colour images in 100 fine classes (50k train / 10k test).",
))
