"""The task registry: the paper's tasks and two small real-data stand-ins on the same code path."""

from __future__ import annotations

from functools import partial

from boundsweep.studies.tasks._augment import cifar_train_inputs, normalise_cifar
from boundsweep.studies.tasks._cifar import load_cifar10
from boundsweep.studies.tasks._densenet import densenet121_cifar
from boundsweep.studies.tasks._digits import load_digits_data
from boundsweep.studies.tasks._lstm import LSTMLanguageModel
from boundsweep.studies.tasks._mlp import MLP
from boundsweep.studies.tasks._mnist import load_mnist
from boundsweep.studies.tasks._mnist1d import load_mnist1d
from boundsweep.studies.tasks._ptb import load_ptb
from boundsweep.studies.tasks._resnet import resnet34_cifar
from boundsweep.studies.tasks._splits import ClassificationData, LanguageData
from boundsweep.studies.tasks._task import Task
from torch import nn

MNIST_HIDDEN = 256
PTB_VOCABULARY = 10_000
PTB_TRAIN_TOKENS = 929_589  # words of ptb.train.txt plus one <eos> per line
PTB_BPTT = 70


def _mlp(hidden: tuple[int, ...], data: ClassificationData) -> nn.Module:
    return MLP(data.train_x.shape[1], hidden, data.num_classes)


def _lstm(layers: int, data: LanguageData) -> nn.Module:
    return LSTMLanguageModel(len(data.vocabulary), layers)


# Every classification task has 10 classes: scored by accuracy, chance (0.1) when diverged.
_ten_class_task = partial(
    Task, kind="classification", metric="accuracy", direction="maximize", diverged_value=0.1
)


def make_mnist_mlp(hidden: int = MNIST_HIDDEN, name: str = "mnist_mlp") -> Task:
    """The paper's MNIST task with a one-hidden-layer MLP of width ``hidden``.

    Register another width with ``TASKS["mnist_mlp_1000"] = make_mnist_mlp(1000, "mnist_mlp_1000")``.
    """
    return _ten_class_task(
        name=name,
        description=f"MNIST, 784-{hidden}-10 fully connected net, 100 epochs, no lr decay",
        default_epochs=100,
        batch_size=128,
        train_size=54_000,
        load_data=load_mnist,
        build_model=partial(_mlp, (hidden,)),
        batchable=True,
    )


def _cifar(name: str, description: str, build) -> Task:
    return _ten_class_task(
        name=name,
        description=description,
        default_epochs=200,
        batch_size=128,
        train_size=45_000,
        load_data=load_cifar10,
        build_model=lambda data: build(data.num_classes),
        milestones=(150,),
        lr_decay=0.1,
        weight_decay=5e-4,
        train_inputs=cifar_train_inputs,
        eval_inputs=normalise_cifar,
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
        load_data=load_ptb,
        build_model=partial(_lstm, layers),
        milestones=(100, 145),
        lr_decay=0.1,
        grad_clip=0.25,
        bptt=PTB_BPTT,
    )


TASKS: dict[str, Task] = {
    "mnist_mlp": make_mnist_mlp(),
    "cifar10_resnet34": _cifar(
        "cifar10_resnet34",
        "CIFAR-10, ResNet-34 (CIFAR variant), 200 epochs, lr x0.1 at 150, wd 5e-4, crop+flip",
        resnet34_cifar,
    ),
    "cifar10_densenet121": _cifar(
        "cifar10_densenet121",
        "CIFAR-10, DenseNet-121 (CIFAR variant), 200 epochs, lr x0.1 at 150, wd 5e-4, crop+flip",
        densenet121_cifar,
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
        load_data=load_digits_data,
        build_model=partial(_mlp, (128,)),
        batchable=True,
    ),
    "mnist1d_mlp": _ten_class_task(
        name="mnist1d_mlp",
        description="MNIST-1D (generated offline), 40-100-100-10 MLP, 30 epochs (the demo's task)",
        default_epochs=30,
        batch_size=100,
        train_size=3_600,
        load_data=load_mnist1d,
        build_model=partial(_mlp, (100, 100)),
        batchable=True,
    ),
}
