"""sbc: simulation-based calibration of hierarchical Bayesian models.

The pipeline, one module per stage::

    scenario.py        generative process, design, models, estimands   (scenarios/*.py)
    backends/          compile a model once, refit it on new data      (nutpie.py, exact.py)
    fitting.py         one simulation: simulate, fit every model, rank
    runner.py          many simulations in parallel (joblib), resumable
    store.py           Parquet results and run.json in the output folder
    stats/             ranks, posterior summaries, uniformity (pure functions)
    calibration.py     per (model, estimand) calibration summary
    cli.py             the ``sbc`` command
"""

__version__ = "0.1.0"
