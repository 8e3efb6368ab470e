"""Random streams: one ``SeedSequence`` per (run seed, simulation index, purpose).

Every random number of a run comes from these streams, so a simulation's data, its fits and
its tie-breaking depend only on the run seed, the simulation index and the model's name:
never on ``--jobs``, on the order simulations finish in, on resumption, or on which other
models run beside it.
"""

from __future__ import annotations

import zlib

import numpy as np

_DATA = 0
_MODEL = 1
_COMPILE = 2
_REFERENCE = 3
_ANALYSIS = 4
_HELDOUT = 5
_PREDICTION = 6
_VALIDATION = 7


def data_rng(seed: int, simulation: int) -> np.random.Generator:
    """Generator for simulation ``simulation``'s parameters and data."""
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(simulation, _DATA)))
    )


def model_rng(seed: int, simulation: int, model: str) -> np.random.Generator:
    """Generator for one model's fit of one simulation (sampler seed, then tie-breaking)."""
    key = (simulation, _MODEL, zlib.crc32(model.encode()))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def heldout_rng(seed: int, simulation: int) -> np.random.Generator:
    """Generator for simulation ``simulation``'s held-out replicates (apart from its data)."""
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(simulation, _HELDOUT)))
    )


def prediction_rng(seed: int, simulation: int, model: str) -> np.random.Generator:
    """Generator for one fit's predictions of new groups (apart from its sampler stream)."""
    key = (simulation, _PREDICTION, zlib.crc32(model.encode()))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def reference_rng(seed: int) -> np.random.Generator:
    """Generator for posterior SBC's reference fit (sampler seed, then the draws' order).

    One per run: the reference posterior given the real data is computed once, and each
    simulation takes its parameters from it by index (:mod:`sbc.workflows.posterior`).
    """
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(_REFERENCE,)))
    )


def example_rng() -> np.random.Generator:
    """Fixed generator for the example data set a model is compiled against.

    Compilation never depends on the run seed, so one compiled model serves every run.
    """
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(0, spawn_key=(_COMPILE,))))


def analysis_rng(seed: int, purpose: str) -> np.random.Generator:
    """Generator for a resampling analysis of a finished run (subsets for a power curve).

    Keyed by the run seed and the purpose's text, so an analysis is reproducible and never
    shares a stream with a simulation or a fit.
    """
    key = (_ANALYSIS, zlib.crc32(purpose.encode()))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def validation_rng(seed: int, purpose: str) -> np.random.Generator:
    """Generator for one check of a real-data validation (``sbc fit``).

    Keyed by the seed and the purpose's text (``prior predictive``, ``posterior predictive
    MODEL``), so each check is reproducible, independent of which other models or checks
    run, and never shares a stream with a simulation, a fit or an analysis.
    """
    key = (_VALIDATION, zlib.crc32(purpose.encode()))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))
