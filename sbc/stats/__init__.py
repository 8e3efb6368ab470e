"""Calibration statistics: pure functions, arrays in, arrays out (no I/O, no plotting).

* :mod:`sbc.stats.ranks` -- thinning and the SBC rank of a true value among posterior draws;
* :mod:`sbc.stats.posterior` -- posterior means, sds, quantiles and per-fit diagnostics;
* :mod:`sbc.stats.uniformity` -- uniformity tests of ranks across simulations;
* :mod:`sbc.stats.pooling` -- data statistics: how much pooling a data set calls for;
* :mod:`sbc.stats.strata` -- strata of a data statistic and the uniformity of ranks in each.
"""
