"""sbc.engine.spec: a run's specification and execution check themselves, in one line."""

import pytest

from sbc.backends import Sampling
from sbc.engine.spec import Execution, RunSpec
from sbc.errors import SettingError


def test_build_resolves_scenario_settings_and_models():
    """A name, text settings and model names resolve to typed values and a name."""
    spec = RunSpec.build("heights", settings={"n_groups": "6"}, models=["partial"])
    assert spec.scenario.name == "heights" and spec.settings["n_groups"] == 6
    assert spec.models == ("partial",) and spec.sampling == Sampling()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"settings": {"n_groups": "0"}}, "n_groups"),
        ({"settings": {"nope": 1}}, "no setting 'nope'"),
        ({"models": ["nope"]}, "no model 'nope'"),
        ({"models": ["partial", "partial"]}, "partial"),
    ],
)
def test_bad_values_are_refused_in_one_line(kwargs, message):
    """Impossible settings, unknown or repeated models: one line naming the problem."""
    with pytest.raises(SettingError) as caught:
        RunSpec.build("heights", **kwargs)
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"jobs": 0}, "jobs"),
        ({"backend": "spark"}, "unknown backend"),
        ({"backend": "dask"}, "needs a scheduler"),
        ({"scheduler": "tcp://x:1"}, "needs the dask backend"),
        ({"fit_timeout": -1}, "fit timeout"),
        ({"max_worker_memory": 0}, "max_worker_memory"),
    ],
)
def test_execution_checks_itself(kwargs, message):
    """An impossible execution is refused when made, wherever it comes from."""
    with pytest.raises(SettingError, match=message):
        Execution(**kwargs)


def test_sampling_is_refused_the_same_way_from_every_entry():
    """target_accept 1.5 fails in Sampling itself, so CLI, sweeps and sbc.testing agree."""
    with pytest.raises(SettingError, match="target_accept must lie in"):
        Sampling(target_accept=1.5)
