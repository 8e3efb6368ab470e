"""sbc.engine.simulate: the generative process of posterior SBC and joined data sets."""

import numpy as np
import pytest

from sbc import registry
from sbc.engine.simulate import join, process
from sbc.errors import SettingError


def test_join_puts_the_real_block_first_key_by_key():
    """Real and new data are joined along the first axis, real first."""
    joined = join({"y": np.array([1.0, 2.0])}, {"y": np.array([3.0])})
    np.testing.assert_array_equal(joined["y"], [1.0, 2.0, 3.0])


def test_join_refuses_data_with_other_keys():
    """Real and simulated data with different keys: one line naming both."""
    with pytest.raises(SettingError, match="real data has"):
        join({"y": np.zeros(2)}, {"x": np.zeros(2)})


def test_process_of_a_scenario_without_real_data_says_what_lacks():
    """Posterior SBC of a scenario with no real data is refused in one line."""
    with pytest.raises(SettingError, match="has no real data"):
        process(registry.get("heights"))
