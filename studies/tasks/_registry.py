"""The task registry: the paper's tasks, two small real-data stand-ins on the same code path,
and DeepOBS's noisy quadratic, where our numbers meet a published benchmark's.

Metadata only (no torch): what a spec is validated against and what the report reads. Each
task's data loader and model are in ``_trainable.py``, under the same name.
"""

from __future__ import annotations

from functools import partial

from boundsweep.optimizers._plugins import Catalog
from boundsweep.studies.tasks import _quadratic_deep
from boundsweep.studies.tasks._task import Task

MNIST_HIDDEN = 256
PTB_VOCABULARY = 10_000
PTB_TRAIN_TOKENS = 929_589  # words of ptb.train.txt plus one <eos> per line
PTB_BPTT = 70

# Every classification task has 10 classes: scored by accuracy, chance (0.1) when diverged.
_ten_class_task = partial(
    Task, kind="classification", metric="accuracy", direction="maximize", diverged_value=0.1
)


def mnist_mlp_task(hidden: int = MNIST_HIDDEN, name: str = "mnist_mlp") -> Task:
    """The paper's MNIST task with a one-hidden-layer MLP of width ``hidden``."""
    return _ten_class_task(
        name=name,
        description=f"MNIST, 784-{hidden}-10 fully connected net, 100 epochs, no lr decay",
        default_epochs=100,
        batch_size=128,
        train_size=54_000,
        batchable=True,
    )


def _cifar(name: str, description: str) -> Task:
    return _ten_class_task(
        name=name,
        description=description,
        default_epochs=200,
        batch_size=128,
        train_size=45_000,
        milestones=(150,),
        lr_decay=0.1,
        weight_decay=5e-4,
        channels_last=True,
    )


def _ptb(layers: int) -> Task:
    return Task(
        name=f"ptb_lstm{layers}",
        description=(
            f"Penn Treebank, {layers}-layer LSTM language model (emb 400, hidden 1150, tied), "
            "200 epochs, lr x0.1 at 100 and 145, clip 0.25"
        ),
        kind="language_model",
        metric="perplexity",
        direction="minimize",
        default_epochs=200,
        diverged_value=float(PTB_VOCABULARY),
        batch_size=20,
        train_size=PTB_TRAIN_TOKENS,
        milestones=(100, 145),
        lr_decay=0.1,
        grad_clip=0.25,
        bptt=PTB_BPTT,
    )


def quadratic_deep_task() -> Task:
    """DeepOBS's 100-d noisy quadratic as Crowded Valley (Schmidt et al. 2021) ran it.

    Its budget, batch and seed numbering are the published runs' (``quadratic_deep.json``).
    Tuned on the validation loss (a third point set, DeepOBS's PyTorch one), reported on the
    test loss; a diverged run scores its loss before training, as DeepOBS fills it.
    """
    facts = _quadratic_deep.facts()
    seeds = _quadratic_deep.seeds()
    return Task(
        name="quadratic_deep",
        description=(
            f"DeepOBS quadratic_deep: 100-d noisy quadratic, {facts['epochs']} epochs of "
            f"{facts['examples'] // facts['batch_size']} batches; seed s is Crowded Valley's "
            f"Hessian instance s - {seeds.start} (seeds {seeds.start} to {seeds.stop - 1})"
        ),
        kind="quadratic",
        metric="loss",
        direction="minimize",
        default_epochs=facts["epochs"],
        diverged_value=None,
        batch_size=facts["batch_size"],
        train_size=facts["examples"],
        drop_remainder=facts["drop_remainder"],
        seeds=seeds,
        # 2% of the best loss, as perplexity: above what the minibatch order alone moves a
        # default run (0.1%), well below the gap between optimizers (AdaBound vs Adam, 20%).
        margin=0.02,
        margin_relative=True,
    )


BUILTIN_TASKS: dict[str, Task] = {
    "mnist_mlp": mnist_mlp_task(),
    "cifar10_resnet34": _cifar(
        "cifar10_resnet34",
        "CIFAR-10, ResNet-34 (CIFAR variant), 200 epochs, lr x0.1 at 150, wd 5e-4, crop+flip",
    ),
    "cifar10_densenet121": _cifar(
        "cifar10_densenet121",
        "CIFAR-10, DenseNet-121 (CIFAR variant), 200 epochs, lr x0.1 at 150, wd 5e-4, crop+flip",
    ),
    "ptb_lstm1": _ptb(1),
    "ptb_lstm2": _ptb(2),
    "ptb_lstm3": _ptb(3),
    "digits_mlp": _ten_class_task(
        name="digits_mlp",
        description="scikit-learn 8x8 digits, 64-128-10 MLP, 30 epochs (CI default, no download)",
        default_epochs=30,
        batch_size=32,
        train_size=1_294,
        batchable=True,
    ),
    "mnist1d_mlp": _ten_class_task(
        name="mnist1d_mlp",
        description="MNIST-1D (generated offline), 40-100-100-10 MLP, 30 epochs (the demo's task)",
        default_epochs=30,
        batch_size=100,
        train_size=3_600,
        batchable=True,
    ),
    "quadratic_deep": quadratic_deep_task(),
}
"""The paper's tasks and the built-in stand-ins."""


def _plugin_problem(task: Task) -> str | None:
    """A plugin task must name its torch half (``code``), or be a ``TrainableTask`` carrying
    it (registered from a ``BOUNDSWEEP_PLUGINS`` module): nothing else could train it."""
    if not task.code and not callable(getattr(task, "build_model", None)):
        return "code must name its training loop (kind loop) or its data and model module"
    return None


TASKS: Catalog[Task] = Catalog("task", BUILTIN_TASKS, Task, _plugin_problem)
"""Every task a campaign can name: the built-in ones and the installed plugins' (entry point
group ``boundsweep.tasks``); ``TASKS.origin(name)`` says which distribution provides one,
``TASKS.register(task)`` adds one from a ``BOUNDSWEEP_PLUGINS`` module."""
