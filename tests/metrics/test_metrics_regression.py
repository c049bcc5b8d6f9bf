"""MSE, RMSE, MAE and R² against scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from w2sg.errors import W2SGError
from w2sg.metrics import mae, mse, r2, rmse


@pytest.mark.parametrize("n", [1, 7, 50, 333])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_regression_metrics_match_sklearn(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n) * rng.uniform(0.1, 10)
    pred = y + rng.normal(size=n) * rng.uniform(0.1, 3)
    assert mse(y, pred) == pytest.approx(mean_squared_error(y, pred), rel=1e-12)
    assert rmse(y, pred) == pytest.approx(math.sqrt(mean_squared_error(y, pred)), rel=1e-12)
    assert mae(y, pred) == pytest.approx(mean_absolute_error(y, pred), rel=1e-12)
    if n > 1:
        assert r2(y, pred) == pytest.approx(r2_score(y, pred), rel=1e-10, abs=1e-12)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("force_finite", [True, False])
@pytest.mark.parametrize("perfect", [True, False])
def test_r2_constant_target_follows_sklearn(force_finite: bool, perfect: bool) -> None:
    y = np.full(6, 2.5)
    pred = y.copy() if perfect else y + np.arange(6)
    expected = r2_score(y, pred, force_finite=force_finite)
    got = r2(y, pred, force_finite=force_finite)
    if math.isnan(expected):
        assert math.isnan(got)
    else:
        assert got == expected


def test_regression_validates_inputs() -> None:
    with pytest.raises(W2SGError):
        mse(np.zeros(3), np.zeros(4))
    with pytest.raises(W2SGError):
        mae(np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(W2SGError):
        r2(np.array([1.0, np.inf]), np.zeros(2))
    with pytest.raises(W2SGError):
        rmse(np.zeros(0), np.zeros(0))
