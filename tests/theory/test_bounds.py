"""Bounds of THEORY.md section 5: hand-computed values, exactness over random tables, the block."""

import json
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import rel_entr
from sklearn.metrics import log_loss

from w2sg.errors import W2SGError
from w2sg.metrics import d_fwd, d_rev, smooth_calibration_error
from w2sg.theory.bounds import (
    bounds_block,
    calibration_bound,
    disagreement_bound,
    generalization_bound,
    misfit_kl,
    misfit_sq,
)


def _clip_rows(p, eps):
    c = np.clip(p, eps, 1.0)
    return c / c.sum(axis=1, keepdims=True)


def _random_table(rng, n, C, saturate):
    """Rows on the simplex; with ``saturate`` some rows are one-hot and some entries exactly 0."""
    p = rng.dirichlet(np.full(C, 0.5), size=n)
    if saturate:
        hot = rng.random(n) < 0.3
        p[hot] = np.eye(C)[rng.integers(0, C, size=hot.sum())]
        p[rng.random((n, C)) < 0.1] = 0.0
        p[p.sum(axis=1) == 0, 0] = 1.0
        p /= p.sum(axis=1, keepdims=True)
    return p


# -- generalization ----------------------------------------------------------------------------
def test_generalization_by_hand_single_example():
    weak = np.array([[0.9, 0.1]])
    student = np.array([[0.8, 0.2]])
    out = generalization_bound(np.array([1]), weak, student, eps=1e-12)
    # L(F*,F) = −log F_1 up to the clipped zero of the truth (ε-sized).
    assert out["measured"] == pytest.approx(-np.log(0.2), abs=1e-9)
    assert out["weak"] == pytest.approx(-np.log(0.1), abs=1e-9)
    assert out["gamma_p"] == pytest.approx(0.1, abs=1e-12)
    assert out["tv_mean"] == pytest.approx(0.1, abs=1e-15)
    tv = out["tv"]
    assert tv["radius"] == pytest.approx(0.1 / 0.1)
    assert tv["lower"] == pytest.approx(-np.log(0.1) - 1.0)
    assert tv["upper"] == pytest.approx(-np.log(0.1) + 1.0)
    kl = 0.9 * np.log(0.9 / 0.8) + 0.1 * np.log(0.1 / 0.2)
    assert out["d_fwd"] == pytest.approx(kl, abs=1e-9)
    assert out["pinsker_fwd"]["radius"] == pytest.approx(np.sqrt(kl / 2) / 0.1, rel=1e-9)
    assert tv["holds"] and out["holds"]
    slack = min(out["measured"] - tv["lower"], tv["upper"] - out["measured"])
    assert tv["slack"] == pytest.approx(slack)


def test_generalization_measured_is_the_cross_entropy():
    rng = np.random.default_rng(0)
    weak = rng.dirichlet(np.ones(3), size=50)
    student = rng.dirichlet(np.ones(3), size=50)
    y = rng.integers(0, 3, size=50)
    out = generalization_bound(y, weak, student, eps=1e-12)
    # Independent reference: scikit-learn's log loss (the truth's clipped zeros cost O(ε log ε)).
    assert out["measured"] == pytest.approx(log_loss(y, student, labels=[0, 1, 2]), abs=1e-9)
    assert out["weak"] == pytest.approx(log_loss(y, weak, labels=[0, 1, 2]), abs=1e-9)
    assert out["gamma_p"] == pytest.approx(min(weak.min(), student.min()), rel=1e-9)
    assert out["gamma_p_source"] == "measured"


def test_generalization_counts_clipped_entries_and_uses_clipped_rows():
    weak = np.array([[1.0, 0.0], [0.5, 0.5]])
    student = np.array([[0.0, 1.0], [1e-9, 1 - 1e-9]])
    out = generalization_bound(np.array([0, 1]), weak, student, eps=1e-6)
    assert out["clipped"] == {"weak": 1, "student": 2}
    w_hat, s_hat = _clip_rows(weak, 1e-6), _clip_rows(student, 1e-6)
    assert out["gamma_p"] == pytest.approx(min(w_hat.min(), s_hat.min()), rel=1e-12, abs=0)
    assert out["tv_mean"] == pytest.approx(np.mean(0.5 * np.abs(w_hat - s_hat).sum(axis=1)))
    assert out["holds"]


def test_generalization_gamma_p_given():
    weak = np.array([[0.7, 0.3], [0.4, 0.6]])
    student = np.array([[0.6, 0.4], [0.5, 0.5]])
    measured = generalization_bound(np.array([0, 1]), weak, student)
    given_ = generalization_bound(np.array([0, 1]), weak, student, gamma_p=0.1)
    assert given_["gamma_p_source"] == "given" and given_["gamma_p"] == 0.1
    assert given_["tv"]["radius"] == pytest.approx(measured["tv"]["radius"] * 0.3 / 0.1)
    with pytest.raises(W2SGError, match="gamma_p"):
        generalization_bound(np.array([0, 1]), weak, student, gamma_p=0.35)


def test_generalization_rejects_mismatched_shapes():
    with pytest.raises(W2SGError, match="same examples"):
        generalization_bound(np.array([0, 1]), np.full((2, 2), 0.5), np.full((2, 3), 1 / 3))
    with pytest.raises(W2SGError, match="labels"):
        generalization_bound(np.array([0, 5]), np.full((2, 2), 0.5), np.full((2, 2), 0.5))


def test_generalization_tv_bound_is_nearly_tight():
    """Binary, truth on the rarest class, tiny perturbation: slack is second order."""
    weak = np.array([[0.99, 0.01]])
    student = np.array([[0.99 - 1e-4, 0.01 + 1e-4]])
    out = generalization_bound(np.array([1]), weak, student, eps=1e-12)
    gap = out["weak"] - out["measured"]  # log(1.01) ≈ 0.00995
    assert gap == pytest.approx(np.log(0.0101 / 0.01), rel=1e-6)
    assert out["tv"]["holds"]
    assert 0 <= out["tv"]["slack"] < 1e-4  # radius 1e-4/0.01 = 0.01 vs gap 0.00995


def test_divergences_match_metrics_and_stay_accurate_near_agreement():
    rng = np.random.default_rng(11)
    weak, student = rng.dirichlet(np.ones(3), size=40), rng.dirichlet(np.ones(3), size=40)
    out = generalization_bound(rng.integers(0, 3, size=40), weak, student, eps=1e-6)
    assert out["d_fwd"] == pytest.approx(d_fwd(weak, student, 1e-6), abs=1e-14)
    assert out["d_rev"] == pytest.approx(d_rev(weak, student, 1e-6), abs=1e-14)
    # Nearly equal rows: KL(w ‖ w + δ) = Σ δ²/(2w) − Σ δ³/(3w²) + O(δ⁴) (Σ δ = 0); the naive
    # Σ w log(w/s) has an absolute error of ~1e-17 here, larger than the value (~2e-18).
    w = np.array([[0.3, 0.7]])
    s = np.array([[0.3 + 1e-9, 0.7 - 1e-9]])
    delta = s[0] - w[0]
    series = np.sum(delta**2 / (2 * w[0])) - np.sum(delta**3 / (3 * w[0] ** 2))
    near = generalization_bound(np.array([0]), w, s, eps=1e-12)
    assert near["d_fwd"] == pytest.approx(series, rel=1e-5)
    assert near["pinsker_fwd"]["radius"] >= near["tv"]["radius"]


def _exact_clipped_rows(p, eps):
    """Clipped, renormalised rows in exact rational arithmetic (the floats taken as exact)."""
    out = []
    for row in p:
        c = [max(Fraction(float(x)), Fraction(eps)) for x in row]
        total = sum(c)
        out.append([x / total for x in c])
    return out


def test_generalization_tv_is_exact_at_the_clip_edge():
    """Saturated row clipped at ε = 1e-8, student moved by ~1e-9 (the former miss of docs/status).

    The clipped entries differ by ~1.3e-17 and their counterparts near 1 by the same amount, below
    the float spacing there: subtracting the rounded rows gave half the TV and a TV radius of
    6.5e-10 against a loss change of 7.8e-10 (holds False, slack −1.3e-10).
    """
    eps = 1e-8
    weak = np.array([[1.0, 0.0]])
    student = np.array([[1.0 - 1.3e-9, 1.3e-9]])
    truth = np.array([[0.4, 0.6]])
    out = generalization_bound(truth, weak, student, eps=eps)
    w_ex, s_ex = _exact_clipped_rows(weak, eps)[0], _exact_clipped_rows(student, eps)[0]
    tv_exact = sum(abs(a - b) for a, b in zip(w_ex, s_ex, strict=True)) / 2
    assert out["tv_mean"] == pytest.approx(float(tv_exact), rel=1e-12, abs=0)
    mp = pytest.importorskip("mpmath", reason="mpmath (a sympy/torch dependency) is the reference")
    mp.mp.dps = 50
    w_mp = [mp.mpf(x.numerator) / x.denominator for x in w_ex]
    s_mp = [mp.mpf(x.numerator) / x.denominator for x in s_ex]
    t_mp = [mp.mpf(x.numerator) / x.denominator for x in _exact_clipped_rows(truth, eps)[0]]
    loss_change = abs(sum(t * mp.log(a / b) for t, a, b in zip(t_mp, w_mp, s_mp, strict=True)))
    assert out["weak"] - out["measured"] == pytest.approx(float(loss_change), rel=1e-5, abs=0)
    fwd = sum(a * mp.log(a / b) for a, b in zip(w_mp, s_mp, strict=True))
    rev = sum(b * mp.log(b / a) for a, b in zip(w_mp, s_mp, strict=True))
    assert out["d_fwd"] == pytest.approx(float(fwd), rel=1e-12, abs=0)
    assert out["d_rev"] == pytest.approx(float(rev), rel=1e-12, abs=0)
    for form in ("tv", "pinsker_fwd", "pinsker_rev"):
        assert out[form]["holds"] and out[form]["slack"] > 0, (form, out[form])
    # The TV radius is the exact one: slack = radius − |loss change| to 1e-12 of the bound.
    radius = float(tv_exact) / out["gamma_p"]
    assert out["tv"]["slack"] == pytest.approx(radius - float(loss_change), abs=1e-12 * 11)


@pytest.mark.parametrize("seed", range(5))
def test_generalization_tv_matches_exact_rationals_near_agreement(seed):
    """tv_mean = mean ½ Σ |ŵ − ŝ| of the exactly clipped rows, to 1e-12, on saturated tables."""
    rng = np.random.default_rng(seed)
    eps = 10.0 ** rng.uniform(-12, -4)
    weak = _random_table(rng, 6, 3, saturate=True)
    student = (1 - 1e-9) * weak + 1e-9 * _random_table(rng, 6, 3, saturate=True)
    out = generalization_bound(rng.integers(0, 3, size=6), weak, student, eps=eps)
    rows = zip(_exact_clipped_rows(weak, eps), _exact_clipped_rows(student, eps), strict=True)
    tv = sum(sum(abs(a - b) for a, b in zip(w, s, strict=True)) / 2 for w, s in rows) / 6
    assert out["tv_mean"] == pytest.approx(float(tv), rel=1e-12, abs=0)


# -- disagreement -----------------------------------------------------------------------------
def test_disagreement_by_hand():
    y = np.array([0, 1, 1, 0])
    weak = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])  # errors at 2, 3
    student = np.array([[0.9, 0.1], [0.6, 0.4], [0.1, 0.9], [0.3, 0.7]])  # errors at 1, 3
    out = disagreement_bound(y, weak, student)
    assert out["measured"] == 0.5 and out["weak"] == 0.5
    assert out["radius"] == 0.5  # argmax differs at 1 and 2
    assert (out["lower"], out["upper"]) == (0.0, 1.0)
    assert out["holds"] and out["slack"] == 0.5


# -- calibration ------------------------------------------------------------------------------
def test_calibration_binary_uses_the_positive_class_and_reports_ece():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, size=80)
    q = rng.uniform(0.05, 0.95, size=80)
    p = np.clip(q + rng.normal(scale=0.1, size=80), 0.01, 0.99)
    weak, student = np.column_stack([1 - q, q]), np.column_stack([1 - p, p])
    out = calibration_bound(y, weak, student)
    assert out["mode"] == "binary" and len(out["per_class"]) == 1
    entry = out["per_class"][0]
    assert entry["class"] == 1
    assert entry["measured"] == pytest.approx(smooth_calibration_error(y, p), abs=1e-9)
    assert entry["weak"] == pytest.approx(smooth_calibration_error(y, q), abs=1e-9)
    assert entry["mean_abs"]["radius"] == pytest.approx(2 * np.mean(np.abs(p - q)), rel=1e-9)
    kl = np.mean(rel_entr(weak, student).sum(axis=1))
    assert entry["pinsker_fwd"]["radius"] == pytest.approx(np.sqrt(2 * kl), rel=1e-7)
    assert entry["mean_abs"]["radius"] <= entry["pinsker_fwd"]["radius"] + 1e-12
    assert entry["holds"] and out["holds"]
    assert set(out["ece"]) == {"weak", "student", "note"}
    assert "no bound" in out["ece"]["note"]


def test_calibration_multiclass_is_one_vs_rest():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 4, size=60)
    weak, student = rng.dirichlet(np.ones(4), size=60), rng.dirichlet(np.ones(4), size=60)
    out = calibration_bound(y, weak, student)
    assert out["mode"] == "one_vs_rest"
    assert [e["class"] for e in out["per_class"]] == [0, 1, 2, 3]
    for e in out["per_class"]:
        c = e["class"]
        reference = smooth_calibration_error((y == c) * 1.0, student[:, c])
        assert e["measured"] == pytest.approx(reference, abs=1e-8)
        assert e["holds"]


# -- exactness over random tables (hypothesis) ------------------------------------------------
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 25),
    C=st.integers(2, 4),
    log_eps=st.floats(-14, -2),
    seed=st.integers(0, 2**32 - 1),
    saturate=st.booleans(),
    close=st.sampled_from([0.0, 1e-8, 1e-3, 1.0]),
    soft_truth=st.booleans(),
)
def test_bounds_never_fail(n, C, log_eps, seed, saturate, close, soft_truth):
    rng = np.random.default_rng(seed)
    eps = 10.0**log_eps
    weak = _random_table(rng, n, C, saturate)
    # The student is the teacher moved towards another table by ``close`` (0: identical).
    other = _random_table(rng, n, C, saturate)
    student = (1 - close) * weak + close * other
    labels = rng.integers(0, C, size=n)
    truth = rng.dirichlet(np.ones(C), size=n) if soft_truth else labels
    gen = generalization_bound(truth, weak, student, eps=eps)
    for form in ("tv", "pinsker_fwd", "pinsker_rev"):
        assert gen[form]["holds"], (form, gen[form])
    # The chain of the proof, on the clipped rows: tv radius ≤ each Pinsker radius.
    assert gen["tv"]["radius"] <= gen["pinsker_fwd"]["radius"] * (1 + 1e-9) + 1e-15
    assert gen["tv"]["radius"] <= gen["pinsker_rev"]["radius"] * (1 + 1e-9) + 1e-15
    assert disagreement_bound(labels, weak, student)["holds"]
    cal = calibration_bound(truth, weak, student, eps=eps)
    for entry in cal["per_class"]:
        for form in ("mean_abs", "pinsker_fwd", "pinsker_rev"):
            assert entry[form]["holds"], (form, entry[form])
    if close == 0.0:
        assert gen["measured"] == gen["weak"] and gen["tv"]["radius"] == 0.0


# -- misfit -----------------------------------------------------------------------------------
def test_misfit_sq_by_hand():
    truth = np.array([1.0, 0.0, 2.0])
    weak = np.array([0.0, 0.0, 0.0])
    student = np.array([1.0, 0.0, 1.0])
    out = misfit_sq(truth, weak, student)
    assert out == {
        "err_weak": pytest.approx(5 / 3),
        "err_w2s": pytest.approx(1 / 3),
        "misfit": pytest.approx(2 / 3),
        "holds": True,
        "slack": pytest.approx(2 / 3),
        "applies": None,
        "reason": None,
    }
    bad = misfit_sq(truth, weak, np.array([-1.0, 0.0, 0.0]))  # err_w2s 8/3 > 5/3 − 1/3
    assert not bad["holds"] and bad["slack"] == pytest.approx(-4 / 3)


def test_misfit_kl_slack_is_the_first_order_sum():
    rng = np.random.default_rng(5)
    t, w, s = (rng.dirichlet(np.ones(3), size=40) for _ in range(3))
    out = misfit_kl(t, w, s, eps=1e-9)
    first_order = np.mean(np.sum((t - s) * np.log(s / w), axis=1))
    assert out["slack"] == pytest.approx(first_order, abs=1e-12)
    assert out["err_w2s"] == pytest.approx(np.mean(rel_entr(t, s).sum(axis=1)), abs=1e-12)
    assert out["misfit"] == pytest.approx(np.mean(rel_entr(s, w).sum(axis=1)), abs=1e-12)


# -- the block ---------------------------------------------------------------------------------
def _arrays(truth_hat, truth_test, weak_hat, weak_test, w2s_hat, w2s_test):
    return dict(
        truth_hat=truth_hat,
        truth_test=truth_test,
        weak_hat=weak_hat,
        weak_test=weak_test,
        w2s_hat=w2s_hat,
        w2s_test=w2s_test,
    )


def _binary_run(rng, n=60):
    def table():
        q = rng.uniform(0.05, 0.95, size=n)
        return np.column_stack([1 - q, q])

    y_hat, y_test = rng.integers(0, 2, size=n), rng.integers(0, 2, size=n)
    return _arrays(y_hat, y_test, table(), table(), table(), table())


def test_block_softmax_notes_and_json():
    arrays = _binary_run(np.random.default_rng(6))
    block = bounds_block(task="classification", head="softmax", loss="xent", **arrays)
    assert set(block) == {"generalization", "calibration", "disagreement", "notes"}
    assert any("not a convex class" in note and "convex_kl" in note for note in block["notes"])
    assert any("forward-KL" in note for note in block["notes"])
    json.dumps(block, allow_nan=False)
    direct = generalization_bound(arrays["truth_test"], arrays["weak_test"], arrays["w2s_test"])
    assert block["generalization"] == direct
    rev = bounds_block(task="classification", head="softmax", loss="reverse_kl", **arrays)
    assert not any("forward-KL" in note for note in rev["notes"])


def test_block_convex_kl_probability_task_has_train_and_test_misfit():
    rng = np.random.default_rng(7)
    arrays = _binary_run(rng, 50)
    p_hat, p_test = rng.uniform(0.1, 0.9, 50), rng.uniform(0.1, 0.9, 50)
    arrays.update(truth_hat=p_hat, truth_test=p_test)
    block = bounds_block(task="probability", head="convex_kl", loss="xent", **arrays)
    t_hat = np.column_stack([1 - p_hat, p_hat])
    assert block["misfit_kl"]["train"] == misfit_kl(
        t_hat, arrays["weak_hat"], arrays["w2s_hat"], split="train"
    )
    assert set(block["misfit_kl"]) == {"train", "test"}
    assert block["generalization"]["holds"] and block["disagreement"]["holds"]


def test_block_regression_ridge_and_errors():
    t, w, s = np.random.default_rng(8).normal(size=(3, 30))
    arrays = _arrays(t, t, w, w, s, s)
    block = bounds_block(task="regression", head="ridge", loss="xent", **arrays)
    assert set(block) == {"misfit_sq", "notes"}
    assert block["misfit_sq"]["train"] == misfit_sq(t, w, s, split="train")
    with pytest.raises(W2SGError, match="unknown task"):
        bounds_block(task="ranking", head="ridge", loss="xent", **arrays)
    with pytest.raises(W2SGError, match="unknown head"):
        bounds_block(task="regression", head="mlp", loss="xent", **arrays)


def test_block_classification_ridge_uses_one_hot_column():
    rng = np.random.default_rng(9)
    y = rng.integers(0, 2, size=40)
    w, s = rng.normal(size=(2, 40, 2))
    block = bounds_block(
        task="classification", head="least_squares", loss="xent", **_arrays(y, y, w, w, s, s)
    )
    assert block["misfit_sq"]["train"] == misfit_sq(y * 1.0, w[:, 1], s[:, 1], split="train")
    w1, s1 = w[:, 1], s[:, 1]
    ones = bounds_block(
        task="classification", head="ridge", loss="xent", **_arrays(y, y, w1, w1, s1, s1)
    )
    assert ones["misfit_sq"]["test"] == misfit_sq(2.0 * y - 1, w1, s1, split="test")


def test_block_recomputed_from_saved_predictions(tmp_path):
    arrays = _binary_run(np.random.default_rng(10))
    block = bounds_block(task="classification", head="convex_kl", loss="reverse_kl", **arrays)
    np.savez(tmp_path / "predictions.npz", **arrays)
    with np.load(tmp_path / "predictions.npz") as z:
        again = bounds_block(
            task="classification", head="convex_kl", loss="reverse_kl", **{k: z[k] for k in z.files}
        )
    assert json.loads(json.dumps(again)) == json.loads(json.dumps(block))


def test_misfit_premise_realizable_least_squares_holds_and_applies():
    """Realizable truth, unconstrained least squares: the inequality applies on D̂ and holds
    (with equality); the test side is out of sample whatever its outcome."""
    rng = np.random.default_rng(11)
    H = rng.normal(size=(80, 5))
    truth = H @ rng.normal(size=5)
    weak = truth + rng.normal(size=80)
    proj = H @ np.linalg.lstsq(H, weak, rcond=None)[0]
    ceiling = H @ np.linalg.lstsq(H, truth, rcond=None)[0]
    train = misfit_sq(truth, weak, proj, split="train", ceiling_pred=ceiling)
    assert train["applies"] is True and train["reason"] is None and train["holds"]
    assert train["slack"] == pytest.approx(0.0, abs=1e-9)
    test = misfit_sq(truth, weak, proj, split="test", ceiling_pred=ceiling)
    assert test["applies"] is False and "out of sample" in test["reason"]


def test_misfit_premise_fails_for_unrealizable_truth_and_says_why():
    rng = np.random.default_rng(12)
    H = rng.normal(size=(80, 3))
    truth = (H[:, 0] > 0).astype(float)  # labels: not a linear function of H
    weak = truth + 0.5 * rng.normal(size=80)
    proj = H @ np.linalg.lstsq(H, weak, rcond=None)[0]
    ceiling = H @ np.linalg.lstsq(H, truth, rcond=None)[0]
    entry = misfit_sq(truth, weak, proj, split="train", ceiling_pred=ceiling)
    residual = np.mean((truth - ceiling) ** 2)
    assert entry["applies"] is False
    assert "premise not met" in entry["reason"] and f"{residual:.3g}" in entry["reason"]
    unchecked = misfit_sq(truth, weak, proj, split="train")
    assert unchecked["applies"] is None and "not checked" in unchecked["reason"]
    one_hot = np.eye(2)[(H[:, 0] > 0).astype(int)]
    p = np.full((80, 2), 0.5)
    kl = misfit_kl(one_hot, p, p, split="train", ceiling_proba=p)
    assert kl["applies"] is False and "one-hot" in kl["reason"]
