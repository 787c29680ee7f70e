"""The two kinds of outcome a model predicts: a binary label (0/1 array) or censored survival (a structured array
with fields ``event`` (bool) and ``time`` (float), as scikit-survival expects)."""
from __future__ import annotations

import numpy as np

BINARY, SURVIVAL = "binary", "survival"


def survival_target(time, event) -> np.ndarray:
    """Structured (event, time) array in scikit-survival's layout."""
    out = np.empty(len(time), dtype=[("event", bool), ("time", float)])
    out["event"] = np.asarray(event).astype(bool)
    out["time"] = np.asarray(time, dtype=float)
    return out


def is_survival(y) -> bool:
    return getattr(np.asarray(y).dtype, "names", None) is not None


def survival_arrays(y) -> tuple[np.ndarray, np.ndarray]:
    """(time, event) of a survival target."""
    y = np.asarray(y)
    return y["time"].astype(float), y["event"].astype(bool)


def task_of(y) -> str:
    return SURVIVAL if is_survival(y) else BINARY
