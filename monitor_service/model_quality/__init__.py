"""Model quality without heavy imports: what is measured (spec), the formulas (metrics), their
intervals, and the checks of a model's configuration against its reference.

Only numpy and pandas: the server process runs the checks at start-up, and it must not import
Evidently, scipy or scikit-learn (they live in the calculation worker, see `engine/`).
"""
