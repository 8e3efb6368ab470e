"""Hypothesis strategies of scenario settings, and a property checked over designs."""

import subprocess
import sys
import textwrap

import pytest
from hypothesis import find, given
from hypothesis import strategies as st

from sbc import registry
from sbc.backends import Sampling
from sbc.scenario import SettingError
from sbc.testing import assert_calibrated, bonferroni, property_settings, scenario_settings

HEIGHTS = registry.get("heights")


@pytest.mark.parametrize("name", registry.names())
def test_every_scenario_gets_only_valid_settings(name):
    """Whatever is drawn for any scenario resolves unchanged, as --set values would."""
    scenario = registry.get(name)

    @property_settings(max_examples=40)
    @given(settings=scenario_settings(scenario))
    def check(settings):
        assert registry.resolve_settings(scenario, settings) == settings

    check()


@given(
    settings=scenario_settings(
        HEIGHTS,
        n_groups=(2, 12),
        mean_scale=(1.0, 3.0),
        n_per_group=[5, 10],
        within_sd_scale=st.sampled_from([4.0, 9.0]),
        between_sd_scale=6.0,
    )
)
def test_bounds_are_respected(settings):
    """Ranges, lists, strategies and single values bound the settings they name."""
    assert 2 <= settings["n_groups"] <= 12 and isinstance(settings["n_groups"], int)
    assert 1.0 <= settings["mean_scale"] <= 3.0
    assert settings["n_per_group"] in (5, 10)
    assert settings["within_sd_scale"] in (4.0, 9.0)
    assert settings["between_sd_scale"] == 6.0


@given(settings=scenario_settings("heights", n_groups=(2, 3), others="default"))
def test_other_settings_can_stay_at_their_defaults(settings):
    """others='default' draws only the bounded settings."""
    assert {k: v for k, v in settings.items() if k != "n_groups"} == {
        k: v for k, v in HEIGHTS.defaults.items() if k != "n_groups"
    }


def test_shrinking_returns_unbounded_settings_to_their_defaults():
    """A minimal failing design differs from the defaults only where it must."""
    found = find(scenario_settings(HEIGHTS), lambda s: s["n_groups"] >= 6)
    assert found == HEIGHTS.defaults | {"n_groups": 6}


def test_unbounded_values_stay_off_the_edge_of_a_setting():
    """A mean in (0, 1) is drawn around its default and kept away from 1."""
    values = []

    @property_settings(max_examples=100)
    @given(settings=scenario_settings("school", others="drawn"))
    def collect(settings):
        values.append(settings["mu_mean"])

    collect()
    assert 0.15 < min(values) and max(values) < 0.98 and len(set(values)) > 10


@pytest.mark.parametrize(
    ("bounds", "message"),
    [
        ({"n_countries": (1, 2)}, "no setting 'n_countries'"),
        ({"n_groups": (0, 3)}, "bound of n_groups: setting n_groups=0: must be at least 1"),
        ({"n_groups": (5, 2)}, "bound of n_groups: 5 > 2"),
        ({"n_groups": (1.5, 4)}, "n_groups is an integer"),
        ({"mean_scale": [1.0, -2.0]}, "mean_scale=-2.0: must be positive"),
        ({"n_groups": []}, "holds no value"),
    ],
)
def test_malformed_bounds_are_refused(bounds, message):
    """Unknown settings and values a setting refuses are one SettingError, up front."""
    with pytest.raises(SettingError, match=message):
        scenario_settings("heights", **bounds)


def test_text_settings_take_lists_not_ranges():
    """A text setting (alberta's course) can be bounded by a list of values only."""
    with pytest.raises(SettingError, match="course is text"):
        scenario_settings("alberta", course=(1, 2))

    @property_settings(max_examples=5)
    @given(settings=scenario_settings("alberta", course=["Mathematics 30-1"]))
    def check(settings):
        assert settings["course"] == "Mathematics 30-1" and settings["year"] == 2016

    check()


EXAMPLES = 4


@property_settings(max_examples=EXAMPLES)
@given(settings=scenario_settings("conjugate", n=(1, 30), prior_sd=(0.5, 3.0)))
def test_the_exact_model_stays_calibrated_across_designs(settings):
    """The property of the README: calibrated over designs, at a Bonferroni level."""
    assert_calibrated(
        "conjugate",
        "exact",
        settings=settings,
        simulations=40,
        sampling=Sampling(chains=2, draws=100),
        alpha=bonferroni(0.01, EXAMPLES),
    )


def test_pymc_imported_inside_an_example_does_not_warn():
    """PyMC's recursion limit, set on its first import inside an example, raises no warning."""
    code = textwrap.dedent(
        """
        import warnings

        warnings.simplefilter("error")
        from hypothesis import given
        from sbc.testing import property_settings, scenario_settings


        @property_settings(max_examples=1)
        @given(settings=scenario_settings("conjugate", others="default"))
        def first_import(settings):
            import sys

            sys.setrecursionlimit(10000)  # what importing pymc.sampling.mcmc does


        first_import()
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
