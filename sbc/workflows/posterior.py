"""Posterior SBC: calibration conditional on the real data (Säilynoja et al. 2025).

Prior SBC draws each simulation's parameters from the prior, so its verdict averages over
every data set the prior allows. Posterior SBC asks about the data at hand: the parameters
``theta_i`` are draws from the posterior given the real data ``y``, a new data set
``y_i ~ p(y | theta_i)`` is simulated from each, and every model is refitted on ``y`` and
``y_i`` together. Since ``theta_i`` is then a draw from the posterior given ``(y, y_i)``,
its rank among a correct model's posterior draws is uniform, as in prior SBC (Säilynoja,
Johnson, Martin & Vehtari 2025, "Posterior SBC: simulation-based calibration checking
conditional on data"; simuk's ``SBC(method="posterior")`` implements the same idea for one
PyMC model, refitted on the concatenated data).

A scenario takes part when it has real data (``real_data``), a :class:`~sbc.scenario.Process`
as its simulator (prior draw and data generation apart), an ``augment(design)`` giving the
design of the real data followed by one more block of the same structure, and a
``reference_model``: the model that is exactly the generative process. That model's
posterior given the real data supplies the ``theta_i`` (its variables are read under the
names :attr:`Process.prior` gives them), so a model under test is checked against the
generative process near the real data, not against itself: a planted bug in a prior is
found even though the buggy model is self-consistent.

How the reference draws are picked: the reference model is fitted once per run, seeded by
:func:`sbc.seeding.reference_rng` (default 4 chains x 1000 draws), every chain is thinned
by ``floor(n_draws / min ESS)`` over all the parameters (bulk and tail ESS, as for ranks),
so the kept draws are roughly independent; the pooled draws are put in a random order from
the same stream and simulation ``i`` takes draw ``i``. The pool is saved in the run folder
(``reference.npz``), so a resumed or extended run reuses it; a run cannot have more
simulations than the pool has draws (simuk likewise takes distinct draws). The new data of
simulation ``i`` come from :func:`sbc.seeding.data_rng` as in prior SBC, the fits from
:func:`sbc.seeding.model_rng`: results never depend on ``--jobs`` or on the order of work.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from sbc import registry, seeding
from sbc.backends import Sampling
from sbc.engine.runner import Parameters
from sbc.engine.simulate import process, replicate
from sbc.engine.spec import RunSpec
from sbc.errors import one_line
from sbc.scenario import Scenario, SettingError
from sbc.stats.mcmc import diagnose
from sbc.stats.ranks import thinning_factor

REFERENCE_FILE = "reference.npz"
"""The thinned, shuffled reference draws in a posterior SBC run folder."""

Pool = Mapping[str, np.ndarray]
"""Reference draws by parameter name, each of shape ``(L, *shape)`` in the order used."""


@dataclass(frozen=True)
class Reference:
    """How posterior SBC draws its parameters.

    Parameters
    ----------
    model : str
        The reference model (the scenario's generative process) fitted to the real data.
    sampling : Sampling
        Its sampler settings. Four chains: the pool must hold at least as many roughly
        independent draws as the run has simulations.
    """

    model: str
    sampling: Sampling = field(default_factory=lambda: Sampling(chains=4))

    def identity(self) -> dict[str, Any]:
        """What a run folder records of the reference (part of the run's identity)."""
        return {"model": self.model, "sampling": asdict(self.sampling)}


def default_reference(scenario: Scenario) -> str:
    """The scenario's declared reference model, or a one-line error."""
    if scenario.reference_model is None:
        raise SettingError(
            f"scenario {registry.display_name(scenario)} declares no reference_model for posterior "
            "SBC; name one with --reference MODEL"
        )
    return scenario.reference_model


def check(scenario: Scenario, settings: Mapping[str, Any], reference: Reference) -> None:
    """Pre-run check of posterior SBC: every piece present, one replicate simulated.

    Raises
    ------
    SettingError
        One line naming the scenario and the problem.
    """
    generative = process(scenario, registry.display_name(scenario))
    registry.model(scenario, reference.model)
    name = registry.display_name(scenario)
    design = scenario.design(dict(settings))
    try:
        params = generative.prior(design, seeding.example_rng())
        replicate(scenario, design, params, seeding.data_rng(0, 0))
    except SettingError as exc:
        raise SettingError(f"scenario {name}: {exc}") from None
    except Exception as exc:
        raise SettingError(
            f"scenario {name}: simulating a posterior SBC data set raised {one_line(exc)}"
        ) from None


def fit_reference(
    scenario: Scenario, settings: Mapping[str, Any], reference: Reference, seed: int
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Fit the reference model to the real data; its thinned draws in a random order.

    Returns
    -------
    pool : dict of str to ndarray
        Every parameter the generative process needs, shape ``(L, *shape)``.
    info : dict
        ``model``, ``chains``, ``draws``, ``thin``, ``size`` (L), ``divergences``,
        ``max_rhat`` and ``min_ess_bulk`` of the reference fit.

    Raises
    ------
    SettingError
        If the reference model lacks a parameter of the generative process.
    """
    generative = process(scenario, registry.display_name(scenario))
    design = scenario.design(dict(settings))
    real = scenario.real_data(design)
    names = list(generative.prior(design, seeding.example_rng()))
    model = registry.model(scenario, reference.model)
    rng = seeding.reference_rng(seed)
    posterior = model.backend.compile(design, real).fit(
        real, int(rng.integers(2**32)), reference.sampling.resolve(model.sampling)
    )
    missing = [n for n in names if n not in posterior.draws]
    if missing:
        raise SettingError(
            f"scenario {registry.display_name(scenario)}: reference model {reference.model} has no "
            f"variable {', '.join(missing)} that the generative process needs"
        )
    draws = {n: np.asarray(posterior.draws[n], dtype=float) for n in names}
    chains, n_draws = draws[names[0]].shape[:2]
    quantities = np.concatenate(
        [np.moveaxis(d.reshape(chains, n_draws, -1), -1, 0) for d in draws.values()]
    )
    rhat, ess, ess_tail = diagnose(quantities)
    factor = thinning_factor(quantities, ess, ess_tail)
    kept = {n: d[:, ::factor].reshape(-1, *d.shape[2:]) for n, d in draws.items()}
    size = len(kept[names[0]])
    order = rng.permutation(size)
    pool = {n: d[order] for n, d in kept.items()}
    info = {
        "model": reference.model,
        "chains": int(chains),
        "draws": int(n_draws),
        "thin": int(factor),
        "size": int(size),
        "divergences": int(posterior.divergences),
        "max_rhat": float(np.nanmax(rhat)),
        "min_ess_bulk": float(np.nanmin(ess)),
    }
    return pool, info


def load_or_fit(
    out: str | os.PathLike[str],
    scenario: Scenario,
    settings: Mapping[str, Any],
    reference: Reference,
    seed: int,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The run's reference pool: read from ``out/reference.npz``, or fitted and saved there."""
    path = Path(out) / REFERENCE_FILE
    if path.is_file():
        with np.load(path, allow_pickle=False) as saved:
            info = json.loads(str(saved["__info__"]))
            pool = {k: saved[k] for k in saved.files if k != "__info__"}
        return pool, info
    pool, info = fit_reference(scenario, settings, reference, seed)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        np.savez(handle, __info__=np.array(json.dumps(info)), **pool)
    os.replace(tmp, path)
    return pool, info


def parameters(spec: RunSpec, reference: Reference) -> Parameters:
    """The parameter source of a posterior SBC run of ``spec`` (checked before any work).

    Its draws are fitted once per run folder and kept there (``reference.npz``), so a
    resumed or extended run reuses them.

    Raises
    ------
    SettingError
        One line naming the scenario and what posterior SBC lacks.
    """
    check(spec.scenario, spec.settings, reference)
    load = partial(
        load_or_fit,
        scenario=spec.scenario,
        settings=spec.settings,
        reference=reference,
        seed=spec.seed,
    )
    return Parameters(reference.identity(), load)
