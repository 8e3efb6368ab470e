"""sbc: simulation-based calibration of hierarchical Bayesian models.

The pipeline, one module per stage::

    scenario.py        generative process, design, models, estimands   (scenarios/*.py)
    backends/          compile a model once, refit it on new data      (nutpie.py, exact.py)
    fitting.py         one simulation: simulate, fit every model, rank
    checks.py          a scenario's mistakes caught before the run starts
    worker.py          one simulation in a worker: fit timeout, error rows
    runner.py          many simulations in parallel (joblib, local or Dask), resumable
    store.py           Parquet results and run.json in the output folder
    stats/             ranks, posterior summaries, uniformity (pure functions)
    calibration.py     per (model, estimand) statistics and the verdict per model
    report/            HTML: run report, real-data fit report, sweep index
    mutants.py         planted-bug detection; realfit.py: fits to real data; sweep.py: grids
    cli.py             the ``sbc`` command
    testing/           calibration assertions, settings strategies, the pytest plugin
"""

__version__ = "0.1.0"
