"""A run's fractional ranks as ArviZ data: what ArviZ's own SBC plots take.

:func:`to_arviz` lays one model's PIT values out as simuk does and arviz-plots reads by
default: an xarray ``DataTree`` with a ``prior_sbc`` group (``posterior_sbc`` for posterior
SBC) whose variables have dimensions ``(chain, draw, ...)``, one "draw" per simulation, so
``arviz_plots.plot_ecdf_pit(to_arviz(...))`` draws the ECDF-difference plot of the run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from sbc.errors import SettingError

_INDEXED = re.compile(r"^(?P<base>[^\[\]]+)\[(?P<label>[^\[\]]*)\]$")


def _split(name: str) -> tuple[str, str | None]:
    """``country_mean[3]`` -> (``country_mean``, ``3``); a plain name -> (name, None)."""
    match = _INDEXED.match(name)
    return (match["base"], match["label"]) if match else (name, None)


def _attrs(record: Mapping[str, Any], model: str) -> dict[str, Any]:
    """The run's record as flat attributes (nested values as JSON text: netCDF can store it)."""
    identity = record.get("identity", {})
    out: dict[str, Any] = {
        "sbc_scenario": str(record.get("name") or identity.get("scenario", "")),
        "sbc_reference": str(identity.get("scenario", "")),
        "sbc_model": model,
        "sbc_models": json.dumps(list(identity.get("models", []))),
        "sbc_settings": json.dumps(identity.get("settings", {}), default=str),
        "sbc_sampling": json.dumps(identity.get("model_sampling", {}).get(model, {}), default=str),
        "sbc_seed": int(identity.get("seed", 0)),
        "sbc_mode": "posterior" if identity.get("mode") == "posterior" else "prior",
        "sbc_values": "fractional ranks (PIT) of the true value among the posterior draws",
    }
    return out


def to_arviz(results: pd.DataFrame, model: str, record: Mapping[str, Any]) -> Any:
    """One model's PIT values per simulation and quantity as an ArviZ ``DataTree``.

    Parameters
    ----------
    results : pandas.DataFrame
        A results table (:data:`sbc.results.schema.COLUMNS`).
    model : str
        The model.
    record : mapping
        The run's ``run.json`` record (scenario, settings, models, seed, mode).

    Returns
    -------
    xarray.DataTree
        Group ``prior_sbc`` (``posterior_sbc`` for posterior SBC): one variable per
        quantity, dimensions ``chain`` (1) and ``draw`` (one per simulation, coordinate the
        simulation index); indexed quantities ``name[label]`` become one variable ``name``
        with a dimension ``name_dim_0`` whose coordinate holds the labels. A failed fit
        leaves NaN. The record is in the attributes (``sbc_*``).

    Raises
    ------
    sbc.errors.SettingError
        If the run has no model of that name.
    """
    rows = results[results["model"] == model]
    if rows.empty:
        known = ", ".join(dict.fromkeys(results["model"])) or "none"
        raise SettingError(f"the run has no model {model!r} (models: {known})")
    wide = rows.pivot_table(index="simulation", columns="estimand", values="pit", dropna=False)
    simulations = np.asarray(wide.index, dtype=int)
    order = list(dict.fromkeys(rows["estimand"]))
    groups: dict[str, list[tuple[str | None, str]]] = {}
    for name in order:
        base, label = _split(name)
        groups.setdefault(base, []).append((label, name))
    variables = {}
    for base, members in groups.items():
        plain = [name for label, name in members if label is None]
        indexed = [(label, name) for label, name in members if label is not None]
        for name in plain:
            values = wide[name].to_numpy(float)[None, :]
            variables[name] = xr.DataArray(values, dims=("chain", "draw"))
        if indexed:
            key = base if base not in variables else f"{base}_indexed"
            values = np.stack([wide[name].to_numpy(float) for _, name in indexed], axis=-1)
            dim = f"{key}_dim_0"
            variables[key] = xr.DataArray(
                values[None, :, :],
                dims=("chain", "draw", dim),
                coords={dim: [label for label, _ in indexed]},
            )
    dataset = xr.Dataset(variables, coords={"chain": [0], "draw": simulations})
    attrs = _attrs(record, model)
    dataset.attrs = attrs
    group = f"{attrs['sbc_mode']}_sbc"
    tree = xr.DataTree.from_dict({group: dataset})
    tree.attrs = attrs
    return tree
