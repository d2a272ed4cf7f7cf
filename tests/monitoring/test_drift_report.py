"""compare_columns: Evidently's default tests, nulls, corrections and bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from flotilla.errors import ConfigError
from flotilla.monitoring import compare_columns

TOL = 1e-9


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def _field(report, name):  # type: ignore[no-untyped-def]
    return next(f for f in report.fields if f.name == name)


def test_numeric_statistics_match_scipy_on_non_null_values(rng: np.random.Generator) -> None:
    ref = rng.normal(0, 1, 500)
    cur = rng.normal(0.2, 1, 300)
    cur_with_nulls = pa.array([*cur.tolist(), None, None], pa.float64())
    fd = compare_columns(pa.table({"x": ref}), pa.table({"x": cur_with_nulls})).fields[0]
    ks = stats.ks_2samp(ref, cur)
    assert fd.ks_statistic == pytest.approx(ks.statistic, abs=TOL)
    assert fd.ks_pvalue == pytest.approx(ks.pvalue, abs=TOL)
    assert fd.wasserstein_normed == pytest.approx(
        stats.wasserstein_distance(ref, cur) / np.std(ref), abs=TOL
    )
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
    r = np.histogram(ref, edges)[0] / len(ref)
    c = np.histogram(cur, edges)[0] / len(cur)
    assert fd.jensen_shannon == pytest.approx(jensenshannon(r, c), abs=TOL)
    rf, cf = np.where(r == 0, 1e-4, r), np.where(c == 0, 1e-4, c)
    assert fd.psi == pytest.approx(float(np.sum((rf - cf) * np.log(rf / cf))), abs=TOL)
    assert (fd.n_current, fd.n_current_values) == (302, 300)
    assert fd.null_rate_current == pytest.approx(2 / 302)
    assert fd.test == "ks" and fd.threshold == 0.05


def test_categorical_chi2_matches_scipy(rng: np.random.Generator) -> None:
    ref = rng.choice(["a", "b", "c", "d"], 400, p=[0.4, 0.3, 0.2, 0.1])
    cur = rng.choice(["a", "b", "c", "d"], 200, p=[0.25, 0.25, 0.25, 0.25])
    fd = compare_columns(pa.table({"c": ref}), pa.table({"c": cur})).fields[0]
    keys = ["a", "b", "c", "d"]
    rc = np.array([(ref == k).sum() for k in keys])
    cc = np.array([(cur == k).sum() for k in keys])
    expected = stats.chisquare(cc, rc * len(cur) / len(ref)).pvalue
    assert fd.test == "chi2" and fd.chi2_pvalue == pytest.approx(expected, abs=TOL)
    assert fd.jensen_shannon == pytest.approx(jensenshannon(rc / 400, cc / 200), abs=TOL)
    assert fd.drifted is True


@pytest.mark.parametrize(
    ("ref", "cur", "test", "kind"),
    [
        pytest.param(lambda g: g.normal(size=500), lambda g: g.normal(size=100), "ks", "numeric",
                     id="numeric-small-ks"),
        pytest.param(lambda g: g.normal(size=1500), lambda g: g.normal(size=100),
                     "wasserstein_normed", "numeric", id="numeric-large-wasserstein"),
        pytest.param(lambda g: g.integers(0, 4, 500), lambda g: g.integers(0, 4, 100), "chi2",
                     "numeric", id="numeric-few-values-chi2"),
        pytest.param(lambda g: g.integers(0, 2, 500), lambda g: g.integers(0, 2, 100), "z",
                     "binary", id="numeric-binary-z"),
        pytest.param(lambda g: g.integers(0, 4, 1500), lambda g: g.integers(0, 4, 100),
                     "jensen_shannon", "numeric", id="numeric-few-values-large-js"),
        pytest.param(lambda g: g.choice(["x", "y", "z"], 500), lambda g: g.choice(["x", "y"], 100),
                     "chi2", "categorical", id="categorical-small-chi2"),
        pytest.param(lambda g: g.choice(["x", "y", "z"], 1500), lambda g: g.choice(["x"], 100),
                     "jensen_shannon", "categorical", id="categorical-large-js"),
        pytest.param(lambda g: g.choice([True, False], 500), lambda g: g.choice([True], 100),
                     "z", "binary", id="bool-small-z"),
    ],
)  # fmt: skip
def test_default_test_follows_evidently(rng, ref, cur, test, kind) -> None:  # type: ignore[no-untyped-def]
    fd = compare_columns(pa.table({"f": ref(rng)}), pa.table({"f": cur(rng)})).fields[0]
    assert (fd.test, fd.kind) == (test, kind)
    assert fd.statistic == getattr(fd, {"ks": "ks_pvalue", "chi2": "chi2_pvalue",
                                        "z": "z_pvalue"}.get(test, test))  # fmt: skip


def test_shift_is_detected_and_identical_is_not(rng: np.random.Generator) -> None:
    ref = pa.table({"x": rng.normal(0, 1, 3000), "c": rng.choice(["a", "b", "c"], 3000)})
    same = compare_columns(ref, ref)
    assert same.drifted_fields == [] and not same.dataset_drift
    shifted = pa.table(
        {"x": rng.normal(0.8, 1, 1000), "c": rng.choice(["a", "b", "c"], 1000, p=[0.8, 0.1, 0.1])}
    )
    report = compare_columns(ref, shifted)
    assert report.drifted_fields == ["x", "c"] and report.dataset_drift


def test_null_rate_change_is_its_own_finding(rng: np.random.Generator) -> None:
    ref = pa.table({"x": rng.normal(size=500)})
    values = rng.normal(size=500)
    cur = pa.table({"x": pa.array([None if i % 3 == 0 else v for i, v in enumerate(values)])})
    fd = compare_columns(ref, cur).fields[0]
    assert fd.null_rate_drifted is True and fd.drifted is False
    assert fd.null_rate_current == pytest.approx(167 / 500)
    report = compare_columns(ref, cur).to_dict()
    assert report["summary"]["null_rate_findings"] == ["x"]


def test_entirely_null_field_reports_nulls_without_crashing(rng: np.random.Generator) -> None:
    ref = pa.table({"x": rng.normal(size=100), "s": rng.choice(["a", "b"], 100)})
    cur = pa.table({"x": pa.nulls(100, pa.float64()), "s": pa.nulls(100)})
    report = compare_columns(ref, cur)
    for fd in report.fields:
        assert fd.drifted is None and fd.note == "no non-null values in the current data"
        assert fd.null_rate_current == 1.0 and fd.null_rate_drifted is True


def test_too_few_rows_gives_no_decision(rng: np.random.Generator) -> None:
    fd = compare_columns(pa.table({"x": rng.normal(size=500)}), pa.table({"x": [0.1] * 10}))
    field = fd.fields[0]
    assert field.drifted is None and field.note == "too few rows"
    assert field.ks_pvalue is not None  # statistics are still reported


def test_ten_thousand_categories_are_pooled(rng: np.random.Generator) -> None:
    cats = np.array([f"c{i}" for i in range(10_000)])
    weights = 1.0 / np.arange(1, 10_001)  # Zipf-like: a few frequent, many rare
    weights /= weights.sum()
    ref = pa.table({"c": rng.choice(cats, 50_000, p=weights)})
    same = compare_columns(ref, pa.table({"c": rng.choice(cats, 20_000, p=weights)}))
    fd = same.fields[0]
    assert fd.note is not None and "categories:" in fd.note and "pooled" in fd.note
    assert fd.test == "jensen_shannon" and fd.drifted is False
    shifted = compare_columns(ref, pa.table({"c": rng.choice(cats, 20_000, p=weights[::-1])}))
    assert shifted.fields[0].drifted is True


def test_bh_correction_is_more_conservative_than_raw(rng: np.random.Generator) -> None:
    n = 400
    ref = {f"f{i}": rng.normal(size=n) for i in range(20)}
    cur = {f"f{i}": rng.normal(size=n) for i in range(20)}
    cur["f0"] = rng.normal(0.16, 1, n)  # a weak shift: raw p around 0.01-0.05
    raw = compare_columns(pa.table(ref), pa.table(cur), correction="none")
    bh = compare_columns(pa.table(ref), pa.table(cur))
    assert len(bh.drifted_fields) <= len(raw.drifted_fields)
    for fd in bh.fields:
        assert fd.pvalue_adjusted is not None and fd.pvalue_adjusted >= fd.ks_pvalue - 1e-15
        assert fd.drifted == (fd.pvalue_adjusted <= 0.05)


def test_timestamps_compare_as_numbers() -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    ref = pa.table({"t": [base + timedelta(hours=i) for i in range(100)]})
    cur = pa.table({"t": [base + timedelta(days=30, hours=i) for i in range(100)]})
    fd = compare_columns(ref, cur).fields[0]
    assert fd.kind == "numeric" and fd.drifted is True


def test_missing_and_mistyped_columns_are_listed() -> None:
    ref = pa.table({"a": [1.0, 2.0], "b": ["x", "y"], "c": [1, 2]})
    cur = pa.table({"a": ["1", "2"], "c": [1, 2], "d": [0, 0]})
    with pytest.raises(ConfigError) as err:
        compare_columns(ref, cur)
    text = str(err.value)
    assert "missing from the current data: b" in text
    assert "'a' is double in the reference but string" in text
    with pytest.raises(ConfigError, match="missing from the reference: d"):
        compare_columns(ref, cur, fields=["c", "d"])


def test_bad_parameters_are_refused() -> None:
    t = pa.table({"a": [1.0]})
    with pytest.raises(ConfigError, match="'correction'"):
        compare_columns(t, t, correction="bonferroni")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="pyarrow Table"):
        compare_columns(t, [1, 2])  # type: ignore[arg-type]


def test_report_json_names_each_statistic(rng: np.random.Generator) -> None:
    report = compare_columns(pa.table({"x": rng.normal(size=50)}), pa.table({"x": [np.nan] * 40}))
    data = report.to_dict()
    keys = set(data["fields"][0])
    assert {
        "psi", "ks_statistic", "ks_pvalue", "chi2_pvalue", "jensen_shannon", "wasserstein_normed",
        "null_rate_reference", "null_rate_current", "test", "drifted",
    } <= keys  # fmt: skip
    assert data["fields"][0]["null_rate_current"] == 1.0  # NaN counts as null
