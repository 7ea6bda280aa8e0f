"""DeepOBS's ``quadratic_deep`` as Crowded Valley ran it: its data and its k-th Hessian.

The problem is ``0.5 (θ - x)ᵀ H (θ - x)`` in 100 dimensions with noisy "data" x. TensorFlow
DeepOBS draws H from one module-level ``RandomState(42)`` that keeps advancing as problems are
built, so which H a run got depends on how many were built before it in the same process:
Crowded Valley's seed s got the instance k = s − 43. Rebuilding that stream here, and the
seed's minibatch order (``_tensorflow_shuffle``), is what lets a trial seeded 43 retrace the
published run seeded 43: the same Hessian (initial loss to 7 significant digits) and the same
batches. The facts come from ``quadratic_deep.json``, which names its sources.

numpy only (the metadata imports this module for the seed range); the torch half is
``_quadratic.py``.
"""

from __future__ import annotations

import json
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
from boundsweep.studies.tasks._tensorflow_shuffle import shuffle_order

FACTS_PATH = Path(__file__).with_name("quadratic_deep.json")


@cache
def facts() -> dict:
    """The construction facts (``quadratic_deep.json``)."""
    return json.loads(FACTS_PATH.read_text())


def seeds() -> range:
    """The trial seeds this task takes: seed s is instance s − ``first_seed``, up to the cap."""
    first = facts()["first_seed"]
    return range(first, first + facts()["instances"])


def instance_of_seed(seed: int) -> int:
    """Crowded Valley's numbering: the seed's Hessian is the (seed − 43)-th drawn.

    Raises:
        ValueError: A seed outside ``seeds()``, naming the valid range.
    """
    valid = seeds()
    if seed not in valid:
        raise ValueError(
            f"seed {seed}: quadratic_deep takes seeds {valid.start} to {valid.stop - 1} "
            f"(seed s is DeepOBS's Hessian instance s - {valid.start}, as Crowded Valley "
            "numbered its runs)"
        )
    return seed - valid.start


def random_rotation(rng: np.random.RandomState, dim: int) -> np.ndarray:
    """A Haar-uniform rotation in SO(dim) by Diaconis & Shahshahani's subgroup algorithm.

    Grown one dimension at a time: a uniform 2-D rotation, then for each size n the rotation of
    size n − 1 embedded below a leading 1 and followed by the reflection that takes e₁ to a
    uniform point v of the sphere S^(n-1). The draws (one uniform angle, then n normals per
    size) come in DeepOBS's order from the shared ``rng``, so the stream stays aligned. The
    result is negated, as DeepOBS returns it.
    """
    angle = 2.0 * np.pi * rng.uniform()
    cos, sin = np.cos(angle), np.sin(angle)
    rotation = np.array([[cos, sin], [-sin, cos]])
    for size in range(3, dim + 1):
        v = rng.normal(size=size)
        v /= np.sqrt(v @ v)
        normal = -v  # the reflection's unit normal: (e₁ − v) / |e₁ − v|
        normal[0] += 1.0
        normal /= np.sqrt(normal @ normal)
        embedded = np.eye(size)
        embedded[1:, 1:] = rotation
        rotation = embedded - 2.0 * np.outer(normal, normal @ embedded)
    return -rotation


def _eigenvalues(rng: np.random.RandomState) -> np.ndarray:
    """90 eigenvalues from U(0, 1) and 10 from U(30, 60): the spectrum reported for deep nets."""
    return np.concatenate(
        [rng.uniform(b["low"], b["high"], b["count"]) for b in facts()["eigenvalue_blocks"]]
    )


def draw_hessian(rng: np.random.RandomState) -> np.ndarray:
    """The next instance's ``Rᵀ diag(ev) R`` from the shared stream (float64)."""
    eigenvalues = _eigenvalues(rng)
    rotation = random_rotation(rng, facts()["dim"])
    return rotation.T @ (eigenvalues[:, None] * rotation)


def _skip_instance(rng: np.random.RandomState) -> None:
    # The same draws as draw_hessian, without the matrix work: the uniforms (eigenvalues and
    # the angle) and the normals of every size. numpy's legacy normals keep their spare value
    # in the generator's state, so one call of n normals continues the stream exactly as
    # several calls adding up to n do.
    dim = facts()["dim"]
    rng.uniform(size=sum(b["count"] for b in facts()["eigenvalue_blocks"]) + 1)
    rng.normal(size=sum(range(3, dim + 1)))


@lru_cache(maxsize=16)
def hessian(instance: int) -> np.ndarray:
    """The ``instance``-th Hessian drawn from ``RandomState(42)`` (0 is the first; read-only).

    A worker trains many trials of few seeds, so recent instances are kept.
    """
    if not 0 <= instance < facts()["instances"]:
        raise ValueError(f"instance {instance}: valid 0 to {facts()['instances'] - 1}")
    rng = np.random.RandomState(facts()["hessian_seed"])
    for _ in range(instance):
        _skip_instance(rng)
    matrix = draw_hessian(rng)
    matrix.setflags(write=False)
    return matrix


def minibatch_order(seed: int, n: int) -> list[int]:
    """The order the published run with ``seed`` fed ``n`` training points in, every epoch."""
    shuffle = facts()["shuffle"]
    assert n <= shuffle["buffer_size"], f"{n} points: the shuffle buffer holds every point"
    return shuffle_order(n, seed, shuffle["op_seed"])


def examples(split: str) -> np.ndarray:
    """The 1,000 fixed points of ``split`` (train, valid, test): N(0, 0.6²) in float32."""
    seed = facts()["data_seeds"][split]
    rng = np.random.RandomState(seed)
    points = rng.normal(0.0, facts()["noise_level"], (facts()["examples"], facts()["dim"]))
    return points.astype(np.float32)
