"""DCS (Ziyin, ICML 2024, "Symmetry induces structure and constraint of learning"): native mirror symmetries
(sparse regression, matrix factorisation), DCS against the lasso, digits compression, and the coverage map."""
