"""Per-batch CIFAR input pipeline on the training device: crop, flip, normalise.

The batch arrives as uint8 (B, 3, 32, 32) straight from the dataset tensor; the random numbers
come from the trial's ``torch.Generator``, which lives on the same device, so the host never
waits for the GPU between batches.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from boundsweep.studies.tasks._cifar import CIFAR_MEAN, CIFAR_STD
from torch.nn import functional as F

CROP_PADDING = 4


@lru_cache(maxsize=8)
def _channel_stats(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    # Made once per device: a (1, 3, 1, 1) tensor built from Python floats is a copy from
    # pageable host memory, which on CUDA waits for the GPU; per batch that would be two syncs.
    mean = torch.tensor(CIFAR_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD, device=device).view(1, 3, 1, 1)
    return mean, std


def normalise_cifar(images: torch.Tensor) -> torch.Tensor:
    """uint8 images to float32 normalised per channel with the CIFAR-10 statistics."""
    mean, std = _channel_stats(images.device)
    return (images.to(torch.float32) / 255.0 - mean) / std


def random_crop_flip(
    images: torch.Tensor, generator: torch.Generator, padding: int = CROP_PADDING
) -> torch.Tensor:
    """Random crop from a zero-padded image and random horizontal flip, for a whole batch.

    The same operations as torchvision's ``RandomCrop(32, padding=4)`` and
    ``RandomHorizontalFlip()`` (zero padding of the raw pixels), done as one gather.
    """
    b, _, h, w = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    device = images.device
    dy = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=device)
    dx = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=device)
    flip = torch.rand(b, generator=generator, device=device) < 0.5
    rows = dy[:, None] + torch.arange(h, device=device)
    cols = torch.arange(w, device=device).expand(b, w)
    cols = torch.where(flip[:, None], cols.flip(1), cols) + dx[:, None]
    batch = torch.arange(b, device=device)[:, None, None, None]
    channel = torch.arange(images.shape[1], device=device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]


def cifar_train_inputs(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Training batch: augment, then normalise."""
    return normalise_cifar(random_crop_flip(images, generator))
