"""Train the quickstart's models and write their artifacts (skops, LightGBM text, JSON)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from flotilla.quickstart._data import churn_frame, fraud_frame, recs_popularity

__all__ = ["CHURN_FEATURES", "Artifacts", "train_all"]

CHURN_FEATURES = ["tenure_months", "monthly_spend", "support_tickets", "is_premium"]
FRAUD_FEATURES = ["amount", "hour", "merchant_risk", "tx_24h", "is_foreign"]


@dataclass(frozen=True)
class Artifacts:
    """Paths and numbers the quickstart registers."""

    churn_model: Path
    churn_lite: Path
    churn_challenger: Path
    churn_metrics: dict[str, float]
    churn_lite_metrics: dict[str, float]
    churn_base_rate: float
    churn_leaky_data: Path
    churn_clean_data: Path
    fraud_model: Path
    fraud_metrics: dict[str, float]
    recs_params: dict[str, Any]
    recs_top10: Path


def _auc(y: Any, p: Any) -> float:
    from sklearn.metrics import roc_auc_score

    return round(float(roc_auc_score(y, p)), 4)


def _train_churn(workdir: Path) -> dict[str, Any]:
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from skops.io import dump

    df = churn_frame()
    leaky = workdir / "churn_training_leaky.parquet"
    df.to_parquet(leaky, index=False)
    clean = workdir / "churn_training.parquet"
    df.drop(columns=["days_since_login", "days_since_login__written_at"]).to_parquet(
        clean, index=False
    )
    train, test = df.iloc[:3000], df.iloc[3000:]
    x, y = train[CHURN_FEATURES], train["churned"]
    gb = GradientBoostingClassifier(n_estimators=60, max_depth=3, random_state=0).fit(x, y)
    challenger = GradientBoostingClassifier(
        n_estimators=150, max_depth=2, learning_rate=0.05, random_state=1
    ).fit(x, y)
    lr = LogisticRegression(max_iter=500).fit(x, y)
    paths = {
        "gb": workdir / "churn_gb.skops",
        "lr": workdir / "churn_lr.skops",
        "challenger": workdir / "churn_gb_challenger.skops",
    }
    dump(gb, paths["gb"])
    dump(lr, paths["lr"])
    dump(challenger, paths["challenger"])
    xt = test[CHURN_FEATURES]
    return {
        "churn_model": paths["gb"],
        "churn_lite": paths["lr"],
        "churn_challenger": paths["challenger"],
        "churn_metrics": {"auc": _auc(test["churned"], gb.predict_proba(xt)[:, 1])},
        "churn_lite_metrics": {"auc": _auc(test["churned"], lr.predict_proba(xt)[:, 1])},
        "churn_base_rate": round(float(y.mean()), 4),
        "churn_leaky_data": leaky,
        "churn_clean_data": clean,
    }


def _train_fraud(workdir: Path) -> dict[str, Any]:
    import lightgbm as lgb

    df = fraud_frame()
    train, test = df.iloc[:4500], df.iloc[4500:]
    data = lgb.Dataset(train[FRAUD_FEATURES], label=train["fraud"], feature_name=FRAUD_FEATURES)
    params = {"objective": "binary", "num_leaves": 15, "verbose": -1, "seed": 1}
    booster = lgb.train(params, data, num_boost_round=40)
    path = workdir / "fraud_lgbm.txt"
    booster.save_model(str(path))
    score = booster.predict(test[FRAUD_FEATURES].to_numpy())
    return {"fraud_model": path, "fraud_metrics": {"auc": _auc(test["fraud"], score)}}


def train_all(workdir: Path) -> Artifacts:
    """Make the data, train every model, write the artifacts under ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    popular = recs_popularity()
    top10 = workdir / "recs_top10.json"
    top10.write_text(json.dumps({"items": popular["*"][:10]}), encoding="utf-8")
    return Artifacts(
        **_train_churn(workdir),
        **_train_fraud(workdir),
        recs_params={"popular": popular, "k": 10},
        recs_top10=top10,
    )


def churn_holdout() -> pd.DataFrame:
    """Rows the quickstart did not train on (for simulated traffic)."""
    return churn_frame().iloc[3000:]
