"""The audit flags each known leak on generated data and stays quiet on clean data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from flotilla.audit import AuditReport, audit
from flotilla.errors import AuditError

Factory = Callable[..., pd.DataFrame]


def run(df: pd.DataFrame, **kwargs: Any) -> AuditReport:
    kwargs.setdefault("entity", "user_id")
    return audit(df, label="churned", event_time="event_time", **kwargs)


def checks(report: AuditReport) -> dict[tuple[str, str], str]:
    return {(f.check, f.feature): f.severity for f in report.findings}


def test_clean_data_has_no_findings(training: Factory) -> None:
    report = run(training())
    assert report.findings == []
    assert (report.exit_code, report.has_errors, report.has_warnings) == (0, False, False)
    assert report.summary["rows"] == 3000
    assert report.summary["features_with_write_times"] == 2


def test_package_is_callable(training: Factory) -> None:
    import flotilla.audit

    report = flotilla.audit(training(n=300), label="churned", event_time="event_time")
    assert isinstance(report, AuditReport)
    assert callable(flotilla.audit.point_in_time_join)


def test_last_login_cleared_on_cancel_is_an_error(training: Factory) -> None:
    df = training()
    df["last_login"] = df["event_time"] - pd.Timedelta(days=2)
    df.loc[df["churned"] == 1, "last_login"] = pd.NaT  # the trigger clears it on cancel
    df.loc[df.sample(frac=0.03, random_state=1).index, "last_login"] = pd.NaT
    report = run(df)
    assert checks(report) == {("null_encodes_label", "last_login"): "error"}
    finding = report.findings[0]
    assert finding.evidence["null_auc"] > 0.9
    assert finding.evidence["label_rate_when_null"] > 0.8
    assert all(row["last_login"] is None for row in finding.examples)
    assert report.exit_code == 2


def test_future_values_counted_with_lags(training: Factory) -> None:
    df = training()
    late = df.index[:150]
    df.loc[late, "tenure__written_at"] = df.loc[late, "event_time"] + pd.Timedelta(hours=2)
    report = run(df)
    assert checks(report) == {("future_value", "tenure"): "error"}
    ev = report.findings[0].evidence
    assert (ev["count"], ev["share"]) == (150, 150 / 3000)
    assert ev["lag_max_s"] == pytest.approx(7200)
    assert report.findings[0].chart["kind"] == "histogram"


def test_write_times_in_another_time_zone(training: Factory) -> None:
    df = training()
    # the same instants shown in UTC+09:00: still before the event, so still clean
    df["tenure__written_at"] = df["tenure__written_at"].dt.tz_convert("Asia/Tokyo")
    df["event_time"] = df["event_time"].dt.tz_convert("UTC").dt.tz_localize(None)  # naive = UTC
    assert run(df).findings == []
    df.loc[:9, "tenure__written_at"] = (
        (df.loc[:9, "event_time"] + pd.Timedelta(minutes=5))
        .dt.tz_localize("UTC")
        .dt.tz_convert("America/New_York")
    )
    assert checks(run(df)) == {("future_value", "tenure"): "error"}


def test_custom_written_at_suffix(training: Factory) -> None:
    df = training().rename(columns={"tenure__written_at": "tenure_ts", "spend__written_at": "x"})
    df.loc[:4, "tenure_ts"] = df.loc[:4, "event_time"] + pd.Timedelta(days=1)
    report = run(df, written_at="_ts")
    assert checks(report) == {("future_value", "tenure"): "error"}
    assert report.summary["features_with_write_times"] == 1
    assert len(report.findings[0].examples) == 5


def test_long_written_at_table(training: Factory, tmp_path: Path) -> None:
    df = training()
    users = df.groupby("user_id")["event_time"].min()
    writes = pd.DataFrame(
        {
            "entity": users.index,
            "feature": "tenure",
            "written_at": users.values - np.timedelta64(1, "h"),
        }
    )
    path = tmp_path / "writes.parquet"
    writes.to_parquet(path)
    assert run(df.drop(columns=["tenure__written_at"]), written_at=path).findings == []
    writes.loc[:9, "written_at"] = pd.Timestamp("2030-01-01")
    writes.to_parquet(path)
    report = run(df.drop(columns=["tenure__written_at"]), written_at=path)
    assert checks(report) == {("future_value", "tenure"): "error"}


def test_point_in_time_joined_training_set_passes(training: Factory) -> None:
    from flotilla.audit import FeatureTable, point_in_time_join

    df = training()
    rng = np.random.default_rng(2)
    logins = pd.DataFrame(
        {
            "user_id": df["user_id"].to_numpy(),
            "written_at": df["event_time"] + pd.to_timedelta(rng.integers(-5, 5, len(df)), "D"),
            "logins": rng.poisson(3, len(df)),
        }
    )
    joined = point_in_time_join(
        df[["user_id", "event_time", "churned"]],
        [FeatureTable(logins)],
        entity="user_id",
        event_time="event_time",
        include_written_at=True,
    )
    report = audit(joined, label="churned", event_time="event_time", entity="user_id")
    assert report.summary["features_with_write_times"] == 1
    assert report.findings == []


def test_label_copies_and_too_good_features(training: Factory) -> None:
    df = training()
    rng = np.random.default_rng(3)
    df["status"] = np.where(df["churned"] == 1, "cancelled", "active")
    df["churn_score"] = df["churned"] * 3.0 + rng.normal(0, 0.55, len(df))
    report = run(df)
    found = checks(report)
    assert found[("label_copy", "status")] == "error"
    assert ("too_good", "churn_score") in found
    assert report.findings[0].severity == "error"


def test_sequential_id_that_predicts_the_label(training: Factory) -> None:
    df = training().sort_values("churned", kind="stable").reset_index(drop=True)
    df["row_id"] = np.arange(len(df))
    report = run(df)
    assert checks(report) == {("identifier_leakage", "row_id"): "error"}
    shuffled = training()
    shuffled["row_id"] = np.random.default_rng(0).permutation(len(shuffled))
    assert run(shuffled).findings == []


def test_split_leaks_through_time_and_entities(training: Factory) -> None:
    df = training()
    cut = df["event_time"].quantile(0.8)
    df["split"] = np.where(df["event_time"] < cut, "train", "test")
    df["user_id"] = [f"u{i}" for i in range(len(df))]
    assert run(df, split="split").findings == []
    df["split"] = np.where(np.random.default_rng(0).random(len(df)) < 0.8, "train", "test")
    df["user_id"] = training()["user_id"]
    found = checks(run(df, split="split"))
    assert found == {
        ("split_time_leakage", "split"): "error",
        ("split_entity_overlap", "split"): "warning",
    }


def test_multiclass_and_hundreds_of_classes(training: Factory) -> None:
    df = training()
    rng = np.random.default_rng(5)
    df["churned"] = rng.choice(["a", "b", "c"], len(df))
    assert run(df).findings == []
    df["churned"] = [f"class{int(i)}" for i in rng.integers(0, 400, len(df))]
    report = run(df)
    assert checks(report) == {("label_cardinality", "churned"): "warning"}
    assert report.exit_code == 1


def test_regression_label_copy(training: Factory) -> None:
    df = training()
    df["churned"] = df["tenure"] * 10 + 3
    report = run(df)
    assert ("label_copy", "tenure") in checks(report)
    assert report.summary["label_kind"] == "numeric"


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda df: df.drop(columns=["churned"]), r"label column 'churned'.*'user_id'"),
        (lambda df: df.assign(event_time="not a time"), r"'event_time'.*'not a time'"),
        (lambda df: df.iloc[:0], "no rows"),
        (lambda df: df.assign(churned=1), "at least two distinct"),
        (lambda df: df.assign(event_time=5), "must be a timestamp"),
    ],
    ids=["missing-label", "unparsable-time", "zero-rows", "constant-label", "integer-time"],
)
def test_bad_input(training: Factory, change: Any, match: str) -> None:
    with pytest.raises(AuditError, match=match):
        run(change(training(n=200)))


def test_html_report_shows_charts(training: Factory, tmp_path: Path) -> None:
    df = training()
    df["last_login"] = df["event_time"].where(df["churned"] == 0)
    df.loc[:99, "tenure__written_at"] = df.loc[:99, "event_time"] + pd.Timedelta(hours=1)
    report = run(df)
    path = report.to_html(tmp_path / "out" / "audit.html")
    text = path.read_text()
    assert text.count("<svg") == len(report.findings) == 2
    assert "last_login" in text and "event time" in text


def test_large_parquet_is_streamed(tmp_path: Path) -> None:
    n = 2_000_000
    rng = np.random.default_rng(11)
    event = pd.Timestamp("2024-01-01", tz="UTC").value // 1000 + rng.integers(0, 10**13, n)
    y = rng.random(n) < 0.2
    leaky = np.where(y, np.nan, rng.normal(size=n))
    table = pa.table(
        {
            "event_time": pa.array(event, pa.timestamp("us", tz="UTC")),
            "x": rng.normal(size=n) + 0.3 * y,
            "leaky": leaky,
            "y": y.astype(np.int8),
        }
    )
    path = tmp_path / "big.parquet"
    import pyarrow.parquet as pq

    pq.write_table(table, path, row_group_size=250_000)
    del table
    report = audit(path, label="y", event_time="event_time", sample_rows=50_000, progress=True)
    assert report.summary["rows"] == n
    assert report.summary["sample_rows"] == 50_000
    assert checks(report) == {("null_encodes_label", "leaky"): "error"}
    assert report.findings[0].evidence["nulls"] == int(y.sum())
