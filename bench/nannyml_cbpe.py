"""NannyML's CBPE on the files bench/quality.py writes; runs in NannyML's own venv, never the project's.

    NML_DISABLE_USAGE_LOGGING=1 /work/venvs/nannyml/bin/python bench/nannyml_cbpe.py \\
        --reference ref.parquet --analysis analysis.parquet --chunk-size 1000 --out nannyml.json

Both files hold `y_pred_proba`, `y_pred` and `y_true` (the reference's labels; the analysis labels are
dropped before estimating). The analysis rows are the windows one after another, `chunk-size` rows
each, so NannyML's chunks are exactly the windows. Writes, per metric, the estimate and NannyML's
confidence band (estimate +- 3 sampling errors, its default) for every chunk.

Imports only NannyML, pandas and the standard library: nothing of the monitor.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

METRICS = ["accuracy", "precision", "recall", "f1", "roc_auc"]


def main() -> int:
    if os.environ.get("NML_DISABLE_USAGE_LOGGING") != "1":
        sys.stderr.write("set NML_DISABLE_USAGE_LOGGING=1: NannyML reports usage to its makers otherwise\n")
        return 2
    import nannyml as nml
    import pandas as pd

    parser = argparse.ArgumentParser()
    parser.add_argument("--reference", required=True)
    parser.add_argument("--analysis", required=True)
    parser.add_argument("--chunk-size", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    reference = pd.read_parquet(args.reference)
    analysis = pd.read_parquet(args.analysis).drop(columns=["y_true"])
    estimator = nml.CBPE(
        problem_type="classification_binary",
        y_pred_proba="y_pred_proba",
        y_pred="y_pred",
        y_true="y_true",
        metrics=["roc_auc", "f1", "precision", "recall", "accuracy"],
        chunk_size=args.chunk_size,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "too few chunks" for the reference: it is one window's worth
        estimator.fit(reference)
        frame = estimator.estimate(analysis).filter(period="analysis").to_df()
    out = {
        metric: {
            "value": frame[(metric, "value")].tolist(),
            "lower": frame[(metric, "lower_confidence_boundary")].tolist(),
            "upper": frame[(metric, "upper_confidence_boundary")].tolist(),
        }
        for metric in METRICS
    }
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump({"version": nml.__version__, "metrics": out}, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
