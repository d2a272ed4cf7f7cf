"""``flotilla audit`` and ``flotilla features join``: exit codes, JSON and files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from flotilla.cli.main import main

Factory = Callable[..., pd.DataFrame]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


@pytest.fixture
def files(tmp_path: Path, training: Factory) -> dict[str, Path]:
    clean = training(n=1500)
    leaky = clean.assign(last_login=clean["event_time"].where(clean["churned"] == 0))
    paths = {"clean": tmp_path / "clean.parquet", "leaky": tmp_path / "leaky.csv"}
    clean.to_parquet(paths["clean"])
    leaky.to_csv(paths["leaky"], index=False)
    return paths


def test_audit_exit_codes_and_json(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path
) -> None:
    base = ["audit", "--label", "churned", "--event-time", "event_time", "--entity", "user_id"]
    code, out, _ = run(capsys, base[0], str(files["clean"]), *base[1:])
    assert code == 0 and "No leakage found" in out
    html = tmp_path / "report.html"
    code, out, _ = run(
        capsys, base[0], str(files["leaky"]), *base[1:], "--json", "--html", str(html)
    )
    assert code == 2
    report = json.loads(out)
    assert report["exit_code"] == 2
    assert [(f["check"], f["feature"]) for f in report["findings"]] == [
        ("null_encodes_label", "last_login")
    ]
    assert "<svg" in html.read_text()


def test_audit_bad_column_is_one_clear_line(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path]
) -> None:
    code, _, err = run(
        capsys, "audit", str(files["clean"]), "--label", "nope", "--event-time", "event_time"
    )
    assert code == 1
    assert "label column 'nope'" in err and "'churned'" in err and "Traceback" not in err


def test_features_join(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    events = pd.DataFrame(
        {"user": ["a", "a", "b"], "ts": pd.to_datetime(["2024-01-02", "2024-01-09", "2024-01-02"])}
    )
    logins = pd.DataFrame(
        {
            "user": ["a", "a", "b"],
            "written_at": pd.to_datetime(["2024-01-01", "2024-01-08", "2023-12-01"]),
            "logins": [1, 2, 3],
        }
    )
    events.to_csv(tmp_path / "events.csv", index=False)
    logins.to_parquet(tmp_path / "logins.parquet")
    out_path = tmp_path / "out" / "train.parquet"

    def join(features: str, *extra: str) -> tuple[int, str, str]:
        return run(
            capsys,
            "features",
            "join",
            str(tmp_path / "events.csv"),
            "--features",
            features,
            "--entity",
            "user",
            "--event-time",
            "ts",
            *extra,
        )

    logins_path = str(tmp_path / "logins.parquet")
    code, out, _ = join(f"{logins_path}:f_", "--ttl", "7d", "-o", str(out_path), "--json")
    assert code == 0
    assert json.loads(out)["features"] == ["f_logins"]
    assert pq.read_table(out_path).column("f_logins").to_pylist() == [1, 2, None]
    code, _, err = join(logins_path, "--ttl", "soon", "-o", str(out_path))
    assert code == 1 and "--ttl" in err
    # an output name whose format cannot be told is refused before any work, nothing written
    wrong = tmp_path / "train.txt"
    code, _, err = join(logins_path, "-o", str(wrong))
    assert code == 1 and "must end in .parquet or .csv" in err and not wrong.exists()
