"""Published results of the IP-CAE paper (ICML 2024), to compare reproductions with.

Classification: test accuracy in %, mean and standard deviation over seeds (from the paper's
poster). Reconstruction: the paper's COIL-20 test MSE.
"""

from __future__ import annotations

DATASETS = ("mnist", "fashion_mnist", "isolet", "coil20", "har", "mice_protein")
METHODS = ("stg", "lassonet", "cae", "gjsd", "ipcae")

CLASSIFICATION_ACCURACY: dict[str, dict[str, tuple[float, float]]] = {
    "stg": {
        "mnist": (92.29, 0.30), "fashion_mnist": (80.85, 0.27), "isolet": (84.95, 0.31),
        "coil20": (96.80, 0.25), "har": (88.80, 0.08), "mice_protein": (68.24, 1.11),
    },
    "lassonet": {
        "mnist": (90.06, 0.33), "fashion_mnist": (78.28, 0.36), "isolet": (84.33, 0.28),
        "coil20": (89.37, 0.47), "har": (92.44, 0.11), "mice_protein": (77.12, 0.80),
    },
    "cae": {
        "mnist": (83.10, 1.23), "fashion_mnist": (73.19, 0.82), "isolet": (75.82, 2.31),
        "coil20": (80.70, 2.93), "har": (82.72, 0.80), "mice_protein": (63.10, 6.51),
    },
    "gjsd": {
        "mnist": (84.38, 1.50), "fashion_mnist": (74.13, 0.64), "isolet": (77.56, 0.82),
        "coil20": (82.10, 3.72), "har": (84.78, 1.04), "mice_protein": (68.43, 7.75),
    },
    "ipcae": {
        "mnist": (94.07, 0.37), "fashion_mnist": (82.68, 0.80), "isolet": (91.85, 0.55),
        "coil20": (97.92, 0.57), "har": (93.71, 0.62), "mice_protein": (94.26, 1.48),
    },
}  # fmt: skip

RECONSTRUCTION_MSE: dict[str, dict[str, float]] = {
    "cae": {"coil20": 4.21e-3},
    "ipcae": {"coil20": 2.48e-3},
}
