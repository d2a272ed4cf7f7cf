"""``flotilla monitor drift`` on real Parquet and CSV files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from scipy import stats

from flotilla.cli.main import main


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    ref_x, cur_x = rng.normal(0, 1, 600), rng.normal(0.6, 1, 400)
    ref = pa.table(
        {"x": ref_x, "plan": rng.choice(["basic", "pro"], 600), "z": rng.normal(size=600)}
    )
    cur = pa.table(
        {"x": cur_x, "plan": rng.choice(["basic", "pro"], 400), "z": rng.normal(size=400)}
    )
    pq.write_table(ref, tmp_path / "ref.parquet")
    pacsv.write_csv(cur, tmp_path / "cur.csv")
    return tmp_path / "ref.parquet", tmp_path / "cur.csv", ref_x, cur_x


def test_json_names_statistics_and_matches_scipy(files, capsys) -> None:  # type: ignore[no-untyped-def]
    ref, cur, ref_x, cur_x = files
    code, out, _ = _run(["monitor", "drift", str(ref), str(cur), "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    x = next(f for f in data["fields"] if f["name"] == "x")
    for key in ("psi", "ks_statistic", "ks_pvalue", "chi2_pvalue", "jensen_shannon",
                "wasserstein_normed", "null_rate_reference", "null_rate_current", "test",
                "drifted"):  # fmt: skip
        assert key in x
    assert x["ks_pvalue"] == pytest.approx(stats.ks_2samp(ref_x, cur_x).pvalue, rel=1e-6)
    assert x["drifted"] is True and x["test"] == "ks"
    assert data["summary"]["drifted_fields"] == ["x"]


def test_table_output_and_fields_option(files, capsys) -> None:  # type: ignore[no-untyped-def]
    ref, cur, _, _ = files
    code, out, _ = _run(["monitor", "drift", str(ref), str(cur), "--fields", "x,plan"], capsys)
    assert code == 0
    assert "Drift per field" in out and "1 of 2 field(s) drifted" in out


def test_missing_fields_and_bad_files_fail_clearly(files, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    ref, cur, _, _ = files
    code, _, err = _run(["monitor", "drift", str(ref), str(cur), "--fields", "x,age"], capsys)
    assert code == 1 and "missing from the reference: age" in err
    code, _, err = _run(["monitor", "drift", str(tmp_path / "nope.csv"), str(cur)], capsys)
    assert code == 1 and "does not exist" in err
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    code, _, err = _run(["monitor", "drift", str(tmp_path / "bad.parquet"), str(cur)], capsys)
    assert code == 1 and "cannot be read" in err
    (tmp_path / "data.txt").write_text("x\n1\n")
    code, _, err = _run(["monitor", "drift", str(tmp_path / "data.txt"), str(cur)], capsys)
    assert code == 1 and "Parquet" in err
    code, _, err = _run(["monitor", "drift", str(ref), str(cur), "--correction", "x"], capsys)
    assert code == 1 and "--correction" in err
