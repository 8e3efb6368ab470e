"""The scenario interface: a generative process, its design, its models and estimands.

A scenario is the first stage of the pipeline
``scenario -> simulated data sets -> backend fits -> results -> diagnostics``.
It bundles

* named **settings** (design sizes and generative hyperparameters) with defaults and
  validation, changeable from the command line with ``--set key=value``;
* a **design** built once from the settings (group membership and other fixed structure);
* a **generative process** that draws every parameter from its prior and then simulates
  data, with NumPy only, from a :class:`numpy.random.Generator`;
* **estimands**: named scalar quantities whose true value each simulation knows and for
  which every model yields posterior draws;
* **models**, each a backend (how to compile and fit it) plus a function mapping its
  posterior draws to the estimands;
* **data statistics** (:class:`DataStatistic`): functions of a simulated data set (how much
  pooling it calls for ...) by which the report checks calibration stratum by stratum.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from sbc.backends import Backend, Sampling
from sbc.errors import SettingError

Draws = Mapping[str, np.ndarray]
"""Posterior draws by variable name, each of shape ``(chain, draw, *shape)``."""


@dataclass(frozen=True)
class Setting:
    """One named, typed setting of a scenario.

    Parameters
    ----------
    name : str
        Key used with ``--set name=value``.
    default : int, float or str
        Default value; its type is the setting's type.
    description : str
        One line shown by ``sbc list``.
    check : callable, optional
        ``check(value)`` returns an error message, or ``None`` when the value is valid.
    """

    name: str
    default: int | float | str
    description: str
    check: Callable[[Any], str | None] | None = None

    def parse(self, text: str) -> int | float | str:
        """Convert command-line text to this setting's type and validate it."""
        kind = type(self.default)
        try:
            value = kind(text) if kind is not int else int(text, 10)
        except ValueError:
            raise SettingError(
                f"setting {self.name} needs {'an integer' if kind is int else 'a number'}, "
                f"got {text!r}"
            ) from None
        self.validate(value)
        return value

    def validate(self, value: Any) -> None:
        """Raise :class:`SettingError` when ``value`` is not allowed."""
        if isinstance(self.default, int) and not isinstance(value, int | np.integer):
            raise SettingError(f"setting {self.name} needs an integer, got {value!r}")
        if isinstance(self.default, str):
            if not isinstance(value, str):
                raise SettingError(f"setting {self.name} needs text, got {value!r}")
        elif not np.isfinite(value):
            raise SettingError(f"setting {self.name} must be finite, got {value!r}")
        if self.check is not None and (message := self.check(value)) is not None:
            raise SettingError(f"setting {self.name}={value}: {message}")


def at_least_one(value: int) -> str | None:
    """Check that a design size (a count of groups or members) is at least 1."""
    return None if value >= 1 else "must be at least 1"


def positive(value: float) -> str | None:
    """Check that a setting is strictly positive."""
    return None if value > 0 else "must be positive"


def open_unit(value: float) -> str | None:
    """Check that a setting lies strictly inside (0, 1)."""
    return None if 0 < value < 1 else "must lie strictly between 0 and 1"


@dataclass(frozen=True)
class Simulation:
    """One simulated data set and the true values of the estimands behind it.

    Parameters
    ----------
    truth : mapping of str to float
        True value of every estimand.
    data : mapping of str to ndarray
        Observed data, by the names the models' data containers use.
    """

    truth: Mapping[str, float]
    data: Mapping[str, np.ndarray]


class EstimandFunction(Protocol):
    """Map a model's posterior draws to estimand draws of shape ``(chain, draw)``."""

    def __call__(self, draws: Draws, design: Any) -> Mapping[str, np.ndarray]:  # noqa: D102
        ...


@dataclass(frozen=True)
class Model:
    """A model to check: how to fit it and how to read the estimands off its draws.

    Parameters
    ----------
    name : str
        Short name (``complete``, ``none``, ``partial`` ...).
    description : str
        One line shown by ``sbc list``.
    backend : Backend
        Compiles the model once for a design and refits it on new data.
    estimands : EstimandFunction
        Derives every scenario estimand from the posterior draws.
    mutant : bool
        A deliberately wrong variant (a planted bug) that SBC should flag; left out of
        runs unless named explicitly (``--models``) or run by ``sbc mutants``.
    sampling : mapping, optional
        This model's own sampler settings (``chains``, ``tune``, ``draws``,
        ``target_accept``), used where the run does not set them (see
        :meth:`sbc.backends.Sampling.resolve`): for a geometry that needs smaller steps or
        longer chains. Give the measurements that chose them where they are set.
    note : str
        A caveat the report shows beside the model's verdict (e.g. a model kept to show
        what a parameterisation costs, whose unhealthy fits are expected).
    extra : str
        The optional extra of ``sbc-testbed`` the model needs (``"stan"``: PyStan and a
        C++ compiler). Such a model runs when named (``--models``), never by default, so
        that default runs and ``sbc mutants`` need nothing beyond the base install.
    new_groups : callable, optional
        ``new_groups(draws, design, rng) -> {estimand: (chain, draw) ndarray}``: estimand
        draws for a data set of groups new to the model, each group's parameters drawn from
        the population the model believes in (its posterior hyperparameters, or its fixed
        prior when it has none: a no-pooling model predicts a new group from its prior).
        With the scenario's :attr:`Process.new_groups`, it gives the held-out elpd of new
        groups (``elpd_heldout_groups``, :mod:`sbc.engine.predict`).
    """

    name: str
    description: str
    backend: Backend
    estimands: EstimandFunction
    mutant: bool = False
    sampling: Mapping[str, float] = field(default_factory=dict)
    note: str = ""
    extra: str = ""
    new_groups: Callable[[Draws, Any, np.random.Generator], Mapping[str, np.ndarray]] | None = None

    def __post_init__(self) -> None:
        try:
            Sampling.from_mapping(self.sampling)
        except SettingError as exc:
            raise SettingError(f"model {self.name}: {exc}") from None


def mutant_models(
    bugs: Mapping[str, str], backend: Callable[[str], Backend], estimands: EstimandFunction
) -> tuple[Model, ...]:
    """One ``mutant_<bug>`` model per planted bug, marked ``mutant=True``.

    Parameters
    ----------
    bugs : mapping of str to str
        Bug name -> one-line description.
    backend : callable
        ``backend(bug)`` builds the backend of the model with that bug planted.
    estimands : EstimandFunction
        The correct model's estimand function (a mutant yields the same estimands).
    """
    return tuple(
        Model(f"mutant_{bug}", text, backend(bug), estimands, mutant=True)
        for bug, text in bugs.items()
    )


Params = Mapping[str, np.ndarray]
"""Estimand values by name, all with one leading batch shape: ``()`` for the truth,
``(draw,)`` for posterior draws."""


@dataclass(frozen=True)
class Process:
    """A generative process in two steps: a prior draw, then data given the parameters.

    It is a simulator (``process(design, rng) -> Simulation``), so it is passed as a
    scenario's ``simulate``; split in two, it also lets posterior SBC
    (:mod:`sbc.workflows.posterior`) simulate data from parameters drawn from a posterior.

    Parameters
    ----------
    prior : callable
        ``prior(design, rng) -> {name: ndarray}``: every parameter the data generation
        needs, by the names the scenario's reference model gives its variables (posterior
        SBC reads them off that model's draws under these names).
    generate : callable
        ``generate(design, params, rng) -> Simulation``: the true estimand values implied
        by ``params`` and a data set simulated from them.
    new_groups : callable, optional
        ``new_groups(design, params, rng) -> params``: the parameters with every group-level
        parameter drawn afresh from the population (hyperparameters kept), so that
        ``generate`` then simulates data of new groups from the same population: the
        held-out replicate of new groups (``elpd_heldout_groups``).
    """

    prior: Callable[[Any, np.random.Generator], Mapping[str, Any]]
    generate: Callable[[Any, Mapping[str, Any], np.random.Generator], Simulation]
    new_groups: (
        Callable[[Any, Mapping[str, Any], np.random.Generator], Mapping[str, Any]] | None
    ) = None

    def __call__(self, design: Any, rng: np.random.Generator) -> Simulation:
        """Draw the parameters from the prior, then the data, from one stream."""
        return self.generate(design, self.prior(design, rng), rng)


@dataclass(frozen=True)
class DataStatistic:
    """A function of one data set by which calibration is checked stratum by stratum.

    For a correct model with exact inference, ranks are uniform conditionally on any
    function of the data (never of the true parameters), so a run can be split by such a
    statistic: the report and ``strata.csv`` test each stratum (tertiles by default).

    Parameters
    ----------
    name : str
        Short name (a column ``stat:<name>`` of the results table).
    description : str
        One line shown in the report.
    function : callable
        ``function(design, data) -> float``.
    """

    name: str
    description: str
    function: Callable[[Any, Mapping[str, np.ndarray]], float]


@dataclass(frozen=True)
class Likelihood:
    """The generative likelihood of the data, in terms of the estimands.

    It turns the log-likelihood of the simulated data into a test quantity (Modrák et al.
    2023): evaluated at the true values and at every posterior draw of every model, and
    ranked like an estimand. Written once per scenario with NumPy, it is the same function
    for every model, including models whose own parameters cannot express the truth.

    Parameters
    ----------
    pointwise : callable
        ``pointwise(params, data, design) -> ndarray of shape batch + (n_obs,)``: the log
        density of each observation.
    groups : callable, optional
        ``groups(design) -> (labels, index)``: group labels and each observation's group
        index, for one log-likelihood per group as well (at most :data:`MAX_GROUPS` groups),
        and for leave-one-group-out cross-validation.
    sample : callable, optional
        ``sample(params, design, rng) -> data``: a data set drawn from the likelihood at
        each of a batch of parameter values (``params`` of shape ``(n,)``, every data array
        of shape ``(n, ...)``): posterior predictive checks of any model, as its draws are
        expressed in estimands.
    mean : callable, optional
        ``mean(params, design) -> ndarray of shape batch + (n_obs,)``: the expected value of
        each observation of :attr:`response`; with it, predictions get a held-out RMSE.
    response : str
        The data key of the observations :attr:`mean` predicts.
    """

    pointwise: Callable[[Params, Mapping[str, np.ndarray], Any], np.ndarray]
    groups: Callable[[Any], tuple[list[str], np.ndarray]] | None = None
    sample: Callable[[Params, Any, np.random.Generator], Mapping[str, np.ndarray]] | None = None
    mean: Callable[[Params, Any], np.ndarray] | None = None
    response: str = ""


MAX_GROUPS = 20
"""Per-group log-likelihood quantities are added only up to this many groups."""


@dataclass(frozen=True)
class Scenario:
    """A generative process with its models, settings and estimands.

    Parameters
    ----------
    name : str
        Name used on the command line.
    description : str
        One line shown by ``sbc list``.
    settings : tuple of Setting
        Every setting with its default.
    design : callable
        ``design(settings) -> design`` builds the fixed structure of the data.
    simulate : callable
        ``simulate(design, rng) -> Simulation`` draws parameters from the prior, then data;
        a :class:`Process` (prior draw and data generation apart) also allows posterior SBC.
    estimands : callable
        ``estimands(design) -> tuple of str``: the estimand names, in report order.
    models : tuple of Model
        The models to check.
    check_settings : callable, optional
        ``check_settings(values) -> message or None`` for rules across settings.
    likelihood : Likelihood, optional
        Adds the ``loglik`` (and per-group ``loglik[...]``) test quantities.
    test_quantities : callable, optional
        ``test_quantities(params, data, design) -> {name: ndarray of the batch shape}``:
        more test quantities, ranked like estimands (e.g. the spread of group means).
    real_data : callable, optional
        ``real_data(design) -> data``: a real data set of the design, for ``sbc fit``.
    observed : callable, optional
        ``observed(design) -> DataFrame`` with columns ``estimand``, ``label``, ``observed``
        and ``weight``: raw estimates to show beside each model's posterior in ``sbc fit``.
    data_statistics : tuple of DataStatistic
        Functions of a data set (how much pooling it calls for ...) stored per simulation;
        the report checks calibration within strata of each.
    augment : callable, optional
        ``augment(design) -> design``, for posterior SBC: the design of the real data
        followed by one more block of observations with the same structure (every data key
        is joined along its first axis, real block first).
    reference_model : str, optional
        For posterior SBC: the model that is exactly the generative process; its posterior
        given the real data supplies the parameters (its variables named as :attr:`Process.prior`
        names them).
    """

    name: str
    description: str
    settings: tuple[Setting, ...]
    design: Callable[[Mapping[str, Any]], Any]
    simulate: Callable[[Any, np.random.Generator], Simulation]
    estimands: Callable[[Any], tuple[str, ...]]
    models: tuple[Model, ...]
    check_settings: Callable[[Mapping[str, Any]], str | None] | None = field(default=None)
    likelihood: Likelihood | None = None
    test_quantities: (
        Callable[[Params, Mapping[str, np.ndarray], Any], Mapping[str, np.ndarray]] | None
    ) = None
    real_data: Callable[[Any], Mapping[str, np.ndarray]] | None = None
    observed: Callable[[Any], Any] | None = None
    data_statistics: tuple[DataStatistic, ...] = ()
    augment: Callable[[Any], Any] | None = None
    reference_model: str | None = None

    def statistics(self, data: Mapping[str, np.ndarray], design: Any) -> dict[str, float]:
        """Every data statistic of one data set (NaN where a statistic is undefined)."""
        out = {}
        for statistic in self.data_statistics:
            with np.errstate(divide="ignore", invalid="ignore"):
                value = float(statistic.function(design, data))
            out[statistic.name] = value if np.isfinite(value) else float("nan")
        return out

    def quantities(
        self,
        params: Params,
        data: Mapping[str, np.ndarray],
        design: Any,
        pointwise: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Every test quantity at ``params`` (the truth, or a batch of posterior draws).

        Parameters
        ----------
        params : mapping of str to ndarray
            Estimand values, all of one batch shape.
        data : mapping of str to ndarray
            The simulated data set.
        design : object
            The scenario's design.
        pointwise : ndarray, optional
            ``likelihood.pointwise(params, data, design)`` when the caller has it already
            (the per-fit prediction needs it too): not computed again.

        Returns
        -------
        dict of str to ndarray of the batch shape
            ``loglik`` and ``loglik[group]`` from :attr:`likelihood`, then the scenario's own
            :attr:`test_quantities`.
        """
        out: dict[str, np.ndarray] = {}
        if self.likelihood is not None:
            if pointwise is None:
                pointwise = self.likelihood.pointwise(params, data, design)
            pointwise = np.asarray(pointwise, dtype=float)
            labels, index = self.likelihood.groups(design) if self.likelihood.groups else ([], None)
            labels = labels if len(labels) <= MAX_GROUPS else []
            if labels and np.isfinite(pointwise).all():
                # every sum in one product with [1 | one-hot groups]: 0.05 ms against 0.54
                # for 2000 draws x 80 observations x 4 groups (an infinite term would make
                # 0 x inf = NaN in the other groups' sums, hence the finite check)
                columns = np.column_stack([np.ones(len(index)), np.eye(len(labels))[index]])
                sums = pointwise @ columns
                out["loglik"] = sums[..., 0]
                for j, label in enumerate(labels):
                    out[f"loglik[{label}]"] = sums[..., j + 1]
            else:
                out["loglik"] = pointwise.sum(axis=-1)
                for j, label in enumerate(labels):
                    out[f"loglik[{label}]"] = pointwise[..., index == j].sum(axis=-1)
        if self.test_quantities is not None:
            out |= {
                k: np.asarray(v, dtype=float)
                for k, v in self.test_quantities(params, data, design).items()
            }
        return out

    @property
    def default_models(self) -> list[str]:
        """Names of the models a run checks unless told otherwise.

        All but the mutants and the models that need an optional extra (:attr:`Model.extra`).
        """
        return [m.name for m in self.models if not m.mutant and not m.extra]

    @property
    def mutants(self) -> list[str]:
        """Names of the deliberately wrong models (planted bugs) ``sbc mutants`` runs.

        Mutants that need an optional extra (:attr:`Model.extra`) run only when named.
        """
        return [m.name for m in self.models if m.mutant and not m.extra]

    @property
    def defaults(self) -> dict[str, int | float]:
        """Default value of every setting."""
        return {s.name: s.default for s in self.settings}

    def model(self, name: str) -> Model:
        """Return the declared model called ``name``.

        Generated mutants (``operator:variable``) are not declared: find models by name
        with :func:`sbc.registry.model`, which builds those too.
        """
        for model in self.models:
            if model.name == name:
                return model
        known = ", ".join(m.name for m in self.models)
        raise SettingError(f"scenario {self.name} has no model {name!r} (known: {known})")

    def resolve_settings(self, overrides: Mapping[str, Any]) -> dict[str, int | float]:
        """Merge ``overrides`` (values or command-line strings) into the defaults and validate.

        Raises
        ------
        SettingError
            For an unknown key or an impossible value.
        """
        by_name = {s.name: s for s in self.settings}
        values = self.defaults
        for key, raw in overrides.items():
            if key not in by_name:
                known = ", ".join(by_name) or "none"
                raise SettingError(f"scenario {self.name} has no setting {key!r} (known: {known})")
            setting = by_name[key]
            if isinstance(raw, str):
                values[key] = setting.parse(raw)
            else:
                setting.validate(raw)
                values[key] = type(setting.default)(raw)
        if self.check_settings is not None and (message := self.check_settings(values)):
            raise SettingError(message)
        return values
