"""``train_batched``: K configurations of one arm trained at once, each as ``train()`` would.

On the small tasks a trial spends most of its time on per-step overhead (Python, autograd,
kernel launches), not arithmetic. Here K models of one architecture are one model with a
leading model dimension: ``torch.func.stack_module_state`` stacks their parameters, ``vmap``
over ``functional_call`` runs the task's own module on all K at once, and
``optimizers.BatchedOptimizer`` steps them with each model's hyperparameters. Every model
keeps what it would have alone:

- its initialisation: model ``k`` is built by ``task.build_model`` right after
  ``seed_everything(seed_k)``, exactly as ``train()`` builds it, and only then stacked;
- its data order: its own generator draws its own permutation every epoch, and its batches
  are sliced from it, so model ``k`` sees the very batches ``train()`` would feed it;
- its loss and gradient: one mean cross-entropy per model; on the CPU an MLP's forward and
  backward are written out with the kernels autograd runs for one model (``_batched_mlp``),
  elsewhere the loss is vmapped and the sum of the K losses has, for each model's
  parameters, that model's gradient alone;
- its divergence: each model's loss is watched on its own (as ``LossWatch`` does); a model
  whose loss stops being finite is recorded as diverged at that step and frozen (zeroed, lr
  0), so it neither stops nor poisons the others.

A task opts in with ``Task.batchable``: a classifier with no augmentation, no batch-norm
statistics, no dropout and no gradient clipping (the MLP tasks), for which these are the
whole of what ``train()`` does.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import torch
from boundsweep.studies._training._batched_mlp import StackedMLP
from boundsweep.studies._training._classification import EVAL_BATCH
from boundsweep.studies._training._hparams import resolve_hparams
from boundsweep.studies._training._loop import _device_data, seed_everything
from boundsweep.studies._training._records import EpochRecord, TrainResult
from boundsweep.studies._training._steps import autocast
from boundsweep.studies.tasks import (
    TASKS,
    Budget,
    ClassificationData,
    Task,
    resolve_data_dir,
    trainable,
)
from torch import Tensor
from torch.func import functional_call, stack_module_state, vmap
from torch.nn import functional as F

if TYPE_CHECKING:
    from boundsweep.optimizers import BatchedOptimizer

__all__ = ["Run", "batchable_tasks", "train_batched"]

Run = tuple[Mapping[str, float], int]
"""One configuration: its hyperparameters (as ``train()`` takes them) and its seed."""


def batchable_tasks() -> list[str]:
    """The registry's tasks that ``train_batched`` takes."""
    return [name for name, task in TASKS.items() if task.batchable]


def train_batched(
    task: str | Task,
    optimizer: str | Sequence[str],
    runs: Sequence[Run],
    budget: Budget | None = None,
    device: str | torch.device = "cpu",
    on_epoch: Callable[[int, EpochRecord], None] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    keep_parameters: bool = False,
) -> list[TrainResult]:
    """Train ``runs`` (hyperparameters, seed) of one optimizer together; one result each.

    Args:
        task: A ``TASKS`` key (or a :class:`Task`) whose ``batchable`` is true.
        optimizer: An ``optimizers.REGISTRY`` key for every run, or one key per run: runs of
            several arms of a campaign train as one stacked model, each group of runs stepped
            by its own optimizer.
        runs: ``(hparams, seed)`` per model, as ``train()`` takes them.
        budget: Epochs / data fraction / step cap, shared by all; ``None`` is the paper's.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        on_epoch: Called with ``(index into runs, EpochRecord)`` for each model still
            training, after each epoch; what it raises ends the whole batch.
        data_dir: Dataset folder; default ``$BOUNDSWEEP_DATA_DIR`` or ``./data``.
        keep_parameters: Return each model's final parameters in its result (tests).

    Returns:
        What ``train()`` returns for each run, in order. ``wall_time`` and each epoch's
        ``seconds`` are the batch's (shared by its models).

    Raises:
        ValueError: Unknown or unbatchable task, unknown optimizer or hyperparameter, no runs,
            or not one optimizer per run.
        MissingDataError: The task's data files are missing and cannot be downloaded.
    """
    started = time.perf_counter()
    spec = trainable(task)
    if not spec.batchable:
        raise ValueError(
            f"task {spec.name!r} cannot be trained batched; batchable: "
            f"{', '.join(batchable_tasks())}"
        )
    if not runs:
        raise ValueError("runs: need at least one (hparams, seed)")
    names = [optimizer] * len(runs) if isinstance(optimizer, str) else list(optimizer)
    if len(names) != len(runs):
        raise ValueError(
            f"optimizer: one name per run, got {len(names)} names for {len(runs)} runs"
        )
    budget = budget or Budget()
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    # The stacked models in optimizer groups, each group's runs in their given order; model k
    # of the stack is run order[k]. A model depends on its own seed only, so the order is free.
    first = {name: names.index(name) for name in names}
    order = sorted(range(len(runs)), key=lambda i: first[names[i]])
    runs, names = [runs[i] for i in order], [names[i] for i in order]
    resolved = [
        resolve_hparams(spec, name, hparams) for name, (hparams, _) in zip(names, runs, strict=True)
    ]

    data = _device_data(spec, resolve_data_dir(data_dir).resolve(), str(device))
    data = data.subset(budget.data_fraction)
    assert isinstance(data, ClassificationData), f"batchable task {spec.name} is a classifier"
    generators, models = [], []
    for _, seed in runs:
        # As train(): seeded after loading, then the model; each model from its own seed.
        generators.append(seed_everything(seed, device))
        models.append(spec.build_model(data).to(device))
    params, buffers = stack_module_state(models)
    groups = [(name, names.index(name), len(names) - names[::-1].index(name)) for name in first]
    opt = _Optimizers(groups, list(params.values()), resolved)
    skeleton = models[0]

    def loss_of(p: dict[str, Tensor], b: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(functional_call(skeleton, (p, b), (x,)), y)

    vmapped_loss = vmap(loss_of)
    vmapped_logits = vmap(
        lambda p, b, x: functional_call(skeleton, (p, b), (x,)), in_dims=(0, 0, None)
    )

    def autograd_step(x: Tensor, y: Tensor) -> Tensor:
        with autocast(device):
            losses = vmapped_loss(params, buffers, x, y)
        for p in params.values():
            p.grad = None
        losses.sum().backward()
        return losses.detach()

    def autograd_logits(x: Tensor) -> Tensor:
        with autocast(device):
            return vmapped_logits(params, buffers, x)

    # On the CPU an MLP's step is written out (_batched_mlp); elsewhere vmap under autocast.
    mlp = StackedMLP.of(skeleton, params) if device.type == "cpu" else None
    loss_step = autograd_step if mlp is None else mlp.loss_and_grads
    batched_logits = autograd_logits if mlp is None else mlp.logits

    count = len(runs)
    epochs = spec.epochs(budget)
    milestones = set(spec.scaled_milestones(epochs))
    records: list[list[EpochRecord]] = [[] for _ in runs]
    diverged_at: list[int | None] = [None] * count
    gather: dict[str, Tensor] = {}  # the training batches' buffers (_gather_buffers)
    steps = 0
    for epoch in range(1, epochs + 1):
        if budget.max_steps is not None and steps >= budget.max_steps:
            break
        if all(d is not None for d in diverged_at):
            break
        epoch_started = time.perf_counter()
        lrs = opt.lr.tolist()
        limit = None if budget.max_steps is None else budget.max_steps - steps
        skeleton.train()
        losses, taken, diverged = _train_epoch(
            spec, data, generators, opt, loss_step, limit, diverged_at, gather
        )
        for k, step_in_epoch in diverged.items():
            diverged_at[k] = steps + step_in_epoch
        steps += taken
        alive = [k for k in range(count) if diverged_at[k] is None]
        skeleton.eval()
        val = _accuracy(batched_logits, count, data.val_x, data.val_y)
        test = _accuracy(batched_logits, count, data.test_x, data.test_y)
        if epoch in milestones:
            opt.scale_lr(spec.lr_decay)  # MultiStepLR's step after this epoch
        bounds = opt.bounds()
        seconds = time.perf_counter() - epoch_started
        for k in alive:
            record = EpochRecord(
                epoch=epoch,
                train_loss=losses[k],
                val_metric=val[k],
                test_metric=test[k],
                lr=lrs[k],
                lower_bound=None if bounds is None else bounds[0][k],
                upper_bound=None if bounds is None else bounds[1][k],
                seconds=seconds,
                step=steps,
            )
            records[k].append(record)
            if on_epoch is not None:
                on_epoch(order[k], record)

    wall_time = time.perf_counter() - started
    results = []
    for k in range(count):
        status = "completed" if diverged_at[k] is None else "diverged"
        if status == "diverged" or not records[k]:
            final_val = final_test = spec.diverged_value
        else:
            final_val, final_test = records[k][-1].val_metric, records[k][-1].test_metric
        results.append(
            TrainResult(
                status=status,
                epochs=records[k],
                val_metric=final_val,
                test_metric=final_test,
                wall_time=wall_time,
                device=str(device),
                steps=steps if diverged_at[k] is None else diverged_at[k],
                hparams=resolved[k],
                parameters=(
                    {n: p[k].detach().clone() for n, p in params.items()}
                    if keep_parameters
                    else None
                ),
            )
        )
    by_run: list[TrainResult] = [results[0]] * count
    for k, result in enumerate(results):
        by_run[order[k]] = result
    return by_run


class _Optimizers:
    """The stack's optimizers: a ``BatchedOptimizer`` per group of runs that share one, each
    over its contiguous slice of the stacked parameters (the whole stack when there is one).

    Args:
        groups: ``(optimizer, first model, end)`` per group, covering the stack in order.
        stacked: The stacked parameters (``[K, ...]``, their gradients in ``.grad``).
        hparams: Each model's resolved hyperparameters.
    """

    def __init__(
        self,
        groups: list[tuple[str, int, int]],
        stacked: list[Tensor],
        hparams: Sequence[Mapping[str, float]],
    ) -> None:
        from boundsweep.optimizers import BatchedOptimizer

        self.stacked = stacked
        self.parts: list[tuple[int, BatchedOptimizer, list[Tensor] | None]] = []
        for name, begin, end in groups:
            if len(groups) == 1:
                self.parts.append((begin, BatchedOptimizer(name, stacked, hparams), None))
                continue
            views = [p.detach()[begin:end] for p in stacked]  # the group's slice, in place
            self.parts.append((begin, BatchedOptimizer(name, views, hparams[begin:end]), views))
        self._grads: list[list[Tensor | None]] = [[None] * len(stacked) for _ in groups]

    @property
    def lr(self) -> Tensor:
        """Every model's current learning rate, in stack order."""
        return torch.cat([opt.lr for _, opt, _ in self.parts])

    def step(self) -> None:
        """Step every group; a group's slices see their slice of each stacked gradient."""
        for (begin, opt, views), seen in zip(self.parts, self._grads, strict=True):
            if views is not None:
                for j, (view, full) in enumerate(zip(views, self.stacked, strict=True)):
                    grad = full.grad
                    if grad is None:
                        view.grad = None
                    elif seen[j] is not grad:  # kept while the gradient tensor is the same
                        seen[j] = grad
                        view.grad = grad[begin : begin + len(view)]
            opt.step()

    def _part(self, model: int) -> tuple[int, BatchedOptimizer]:
        for begin, opt, _ in reversed(self.parts):
            if model >= begin:
                return begin, opt
        raise IndexError(model)

    def freeze(self, model: int) -> None:
        """Stop model ``model`` for good (``BatchedOptimizer.freeze``)."""
        begin, opt = self._part(model)
        opt.freeze(model - begin)

    def scale_lr(self, factor: float) -> None:
        for _, opt, _ in self.parts:
            opt.scale_lr(factor)

    def bounds(self) -> tuple[list[float | None], list[float | None]] | None:
        """Each model's step-size bounds (``None`` for a model of an unbounded optimizer);
        ``None`` if no model has any."""
        lower: list[float | None] = []
        upper: list[float | None] = []
        found = False
        for _, opt, _ in self.parts:
            bounds = opt.bounds()
            if bounds is None:
                lower += [None] * opt.models
                upper += [None] * opt.models
            else:
                found = True
                lower += bounds[0]
                upper += bounds[1]
        return (lower, upper) if found else None


def _train_epoch(
    task: Task,
    data: ClassificationData,
    generators: list[torch.Generator],
    opt: _Optimizers,
    loss_step: Callable[[Tensor, Tensor], Tensor],
    step_limit: int | None,
    diverged_at: list[int | None],
    gather: dict[str, Tensor],
) -> tuple[list[float], int, dict[int, int]]:
    """One shuffled pass for every model; (mean losses, steps, {model: step it diverged at}).

    The batches are ``training_batches``' for each model's generator: one permutation per
    model, sliced into batches (``train()`` gathers 32 of them at a time: the same rows).
    """
    device = data.train_x.device
    count = len(generators)
    n = len(data.train_y)
    orders = torch.stack(
        [torch.randperm(n, generator=g, device=device) for g in generators]
    )  # [K, n]
    total = torch.zeros(count, dtype=torch.float64, device=device)
    weight = 0
    taken = 0
    every = 25 if device.type == "cuda" else 1
    watched = torch.tensor([d is None for d in diverged_at], device=device)
    diverged: dict[int, int] = {}

    def watch() -> None:
        if bool(torch.isfinite(total).all()):  # the usual case: one check, one sync
            return
        bad = (~torch.isfinite(total)) & watched
        for k in bad.nonzero().flatten().tolist():
            diverged[k] = taken
            watched[k] = False
            total[k] = 0.0
            opt.freeze(k)

    size = task.batch_size
    for start in range(0, n, size):
        if step_limit is not None and taken >= step_limit:
            break
        # Model k's batch: rows start..start+size of its permutation, as training_batches
        # slices them; gathered one step at a time into buffers kept across steps, so the
        # K batches stay in cache (a 32-batch block of 27 models is megabytes).
        index = orders[:, start : start + size]
        flat = index.reshape(-1)
        rows_x, rows_y = _gather_buffers(gather, data, count * size)
        x = torch.index_select(data.train_x, 0, flat, out=rows_x[: len(flat)])
        x = x.view(*index.shape, *data.train_x.shape[1:])
        y = torch.index_select(data.train_y, 0, flat, out=rows_y[: len(flat)]).view(index.shape)
        losses = loss_step(x, y)  # and every model's gradients
        opt.step()
        total += losses.to(torch.float64) * y.shape[1]
        weight += y.shape[1]
        taken += 1
        if taken % every == 0:
            watch()
    watch()
    means = (total / max(1, weight)).tolist()
    return means, taken, diverged


def _gather_buffers(
    gather: dict[str, Tensor], data: ClassificationData, rows: int
) -> tuple[Tensor, Tensor]:
    """Room for ``rows`` training examples and their labels, allocated once per batch."""
    if "x" not in gather or len(gather["x"]) < rows:
        gather["x"] = data.train_x.new_empty((rows, *data.train_x.shape[1:]))
        gather["y"] = data.train_y.new_empty(rows)
    return gather["x"], gather["y"]


@torch.no_grad()
def _accuracy(
    batched_logits: Callable[[Tensor], Tensor], count: int, x: Tensor, y: Tensor
) -> list[float]:
    """Each of the ``count`` models' share of correctly classified examples, in
    ``EVAL_BATCH`` chunks."""
    correct = torch.zeros(count, dtype=torch.long, device=y.device)
    for start in range(0, len(y), EVAL_BATCH):
        logits = batched_logits(x[start : start + EVAL_BATCH])
        correct += (logits.argmax(2) == y[start : start + EVAL_BATCH]).sum(1)
    return [c / max(1, len(y)) for c in correct.tolist()]
