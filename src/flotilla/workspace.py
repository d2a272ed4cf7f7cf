"""The Python API: one Flotilla home (registry, artifacts, runtimes) as one object.

Example:
    >>> import flotilla
    >>> ws = flotilla.Workspace.open(flotilla.Settings(home="/tmp/fl"))  # doctest: +SKIP
    >>> v = ws.register("churn", flavor="sklearn", artifact="model.skops",
    ...                 metrics={"auc": 0.91}, alias="champion")  # doctest: +SKIP
    >>> ws.load("churn@champion").predict([{"age": 31.0, "plan": "pro"}])  # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flotilla.errors import (
    ArtifactNotFoundError,
    ConfigError,
    FlavorError,
    LeakageRiskError,
    RuntimeLoadError,
    SignatureError,
)
from flotilla.registry import (
    ArtifactStore,
    ModelRef,
    ModelVersion,
    Registry,
    check_alias,
    check_name,
    check_task,
)
from flotilla.runtimes import (
    FLAVORS,
    Runtime,
    RuntimeSpec,
    infer_signature,
    load_runtime,
    to_onnx,
)
from flotilla.settings import Settings
from flotilla.signature import Signature
from flotilla.testing import CheckReport, run_checks
from flotilla.types import Clock

__all__ = ["Workspace"]

_TASK_BY_OUTPUT = {
    "probability": "classification",
    "label": "classification",
    "score": "regression",
    "items": "ranking",
}
_CONVERTIBLE = ("sklearn", "lightgbm")


@dataclass
class Workspace:
    """A Flotilla home: registry metadata, content-addressed artifacts and runtimes.

    Build one with :meth:`open`; the constructor only stores its parts.
    """

    settings: Settings
    registry: Registry
    artifacts: ArtifactStore

    @classmethod
    def open(cls, settings: Settings | None = None, *, clock: Clock | None = None) -> Workspace:
        """Open (and on first use create and migrate) the home named by ``settings``."""
        settings = settings or Settings.from_env()
        registry = Registry.open(settings, clock=clock)
        return cls(settings=settings, registry=registry, artifacts=registry.artifacts)

    @property
    def actor(self) -> str:
        return self.settings.actor

    # -- registering ---------------------------------------------------------------------

    def register(
        self,
        name: str,
        *,
        flavor: str,
        artifact: str | Path | None = None,
        entry: str | None = None,
        params: Mapping[str, Any] | None = None,
        signature: Signature | Mapping[str, Any] | str | Path | None = None,
        task: str | None = None,
        description: str = "",
        owner: str = "",
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, str] | None = None,
        lineage: Mapping[str, Any] | None = None,
        alias: str | None = None,
        to_onnx: bool = False,
        trust_pickle: bool = False,
        training_data: str | Path | None = None,
        label: str | None = None,
        event_time: str | None = None,
        accept_leakage_risk: str | None = None,
        reference: str | Path | None = None,
        reference_output: str | None = None,
        actor: str | None = None,
    ) -> ModelVersion:
        """Register a new immutable version of model ``name`` and return it.

        The artifact is loaded with its flavor's runtime before anything is stored, so an
        artifact that is not what its flavor says, or a pickle that is not trusted, is refused
        and nothing is written. With ``to_onnx`` a sklearn or LightGBM model is converted and
        the ONNX version is kept only when predictions agree within 1e-5 (the report is in
        ``version.lineage["onnx_conversion"]``). With ``training_data`` the leakage audit runs
        first and a version whose audit finds errors is refused unless
        ``accept_leakage_risk`` gives a reason (recorded in the audit trail). With
        ``reference`` (a Parquet or CSV file of training or validation rows) a reference
        profile of the inputs (and of ``reference_output``, a column of model outputs) is
        built first and stored with the version, for drift monitoring.

        Raises:
            FlavorError, ArtifactNotFoundError, UnsafeArtifactError, SignatureError,
            ConflictError, LeakageRiskError, StorageError.
        """
        actor = actor or self.actor
        check_name(name)  # names, task and alias are checked before any work is done
        if task is not None:
            check_task(task)
        if alias is not None:
            check_alias(alias)
        flavor = _check_flavor(flavor)
        path = _check_artifact(flavor, artifact)
        sig = self._signature_for(
            name, flavor, path, signature, entry=entry, params=params, trust_pickle=trust_pickle
        )
        spec = RuntimeSpec(
            flavor=flavor,
            path=path,
            signature=sig,
            entry=entry,
            params=dict(params or {}),
            trust_pickle=trust_pickle,
            label=f"{name}@new",
        )
        runtime = load_runtime(spec)  # refuses bad artifacts before anything is stored
        _smoke_test(runtime, sig, name, flavor)
        lineage_out: dict[str, Any] = dict(lineage or {})
        audit_summary = self._leakage_gate(
            name, training_data, label, event_time, accept_leakage_risk, actor
        )
        if audit_summary is not None:
            ages = audit_summary.pop("feature_ages")
            if ages:
                lineage_out["training_feature_ages"] = ages
            lineage_out["training_audit"] = audit_summary
        profile = None
        if reference is not None:
            from flotilla.monitoring import build_profile

            profile = build_profile(
                Path(reference), signature=sig, output_column=reference_output, progress=False
            )
        with tempfile.TemporaryDirectory(prefix="flotilla-onnx-") as tmp:
            if to_onnx:
                spec, conversion = self._convert(spec, sig, Path(tmp))
                lineage_out["onnx_conversion"] = conversion
            stored = self.artifacts.put(spec.path) if spec.path is not None else None
        model_task = task or _TASK_BY_OUTPUT[sig.output.kind]
        self.registry.ensure_model(
            name,
            task=model_task,
            signature=sig,
            description=description,
            owner=owner,
            actor=actor,
        )
        version = self.registry.register_version(
            name,
            flavor=spec.flavor,
            artifact=stored,
            entry=entry,
            params=dict(params or {}),
            metrics={k: float(v) for k, v in (metrics or {}).items()},
            tags=dict(tags or {}),
            lineage=lineage_out,
            trust_pickle=trust_pickle,
            signature=sig,
            actor=actor,
        )
        if accept_leakage_risk and audit_summary and audit_summary.get("has_errors"):
            self.registry.record_event(
                "accept_leakage_risk",
                model=name,
                subject=version.ref,
                before=None,
                after={"audit": audit_summary},
                reason=accept_leakage_risk,
                actor=actor,
            )
        if profile is not None:
            self.registry.set_profile(name, version.version, profile, actor=actor)
        if alias:
            self.registry.set_alias(name, alias, version.version, actor=actor)
        return version

    def _signature_for(
        self,
        name: str,
        flavor: str,
        path: Path | None,
        signature: Signature | Mapping[str, Any] | str | Path | None,
        *,
        entry: str | None,
        params: Mapping[str, Any] | None,
        trust_pickle: bool,
    ) -> Signature:
        if isinstance(signature, Signature):
            return signature
        if isinstance(signature, Mapping):
            return Signature.from_dict(signature)
        if signature is not None:
            return Signature.load(signature)
        if path is not None:
            inferred = infer_signature(
                flavor, path, entry=entry, params=dict(params or {}), trust_pickle=trust_pickle
            )
            if inferred is not None:
                return inferred
        try:
            existing = self.registry.get_model(name).signature
        except KeyError:
            existing = None
        if existing is not None:
            return existing
        raise SignatureError(
            f"Cannot infer the signature of {name!r}: the {flavor} artifact does not name its "
            "inputs. Pass --signature FILE (YAML or JSON: {'inputs': [{'name': 'age', 'type': "
            "'float'}], 'output': {'kind': 'probability'}})."
        )

    def _convert(
        self, spec: RuntimeSpec, sig: Signature, out_dir: Path
    ) -> tuple[RuntimeSpec, dict[str, Any]]:
        if spec.flavor not in _CONVERTIBLE or spec.path is None:
            raise FlavorError(
                f"--to-onnx converts the flavors {', '.join(_CONVERTIBLE)}; "
                f"got {spec.flavor!r}. Register without --to-onnx."
            )
        report = to_onnx(
            spec.flavor,
            spec.path,
            signature=sig,
            sample=sig.sample_records(64),
            out_dir=out_dir,
            trust_pickle=spec.trust_pickle,
        )
        info = report.to_dict()
        if not report.ok or report.onnx_path is None:
            return spec, info
        kept = RuntimeSpec(flavor="onnx", path=report.onnx_path, signature=sig, label=spec.label)
        load_runtime(kept)
        return kept, info

    def _leakage_gate(
        self,
        name: str,
        training_data: str | Path | None,
        label: str | None,
        event_time: str | None,
        accept: str | None,
        actor: str,
    ) -> dict[str, Any] | None:
        if training_data is None:
            return None
        if not label or not event_time:
            raise ConfigError(
                "--training-data needs --label COL and --event-time COL so the leakage audit "
                "knows the target and the moment of prediction."
            )
        from flotilla.audit import audit

        report = audit(Path(training_data), label=label, event_time=event_time)
        summary: dict[str, Any] = {
            "feature_ages": _training_age_percentiles(Path(training_data), event_time),
            "file": str(training_data),
            "has_errors": report.has_errors,
            "has_warnings": report.has_warnings,
            "findings": [
                {"check": f.check, "feature": f.feature, "severity": f.severity}
                for f in report.findings
            ],
        }
        if report.has_errors and not accept:
            errors = [f for f in report.findings if f.severity == "error"]
            listed = "; ".join(f"{f.check} on {f.feature!r}" for f in errors[:5])
            raise LeakageRiskError(
                f"The leakage audit of {str(training_data)!r} found {len(errors)} error(s) "
                f"({listed}), so {name!r} was not registered. Fix the training data (run "
                "'flotilla audit' for the evidence) or pass --accept-leakage-risk \"reason\"."
            )
        return summary

    # -- reading -------------------------------------------------------------------------

    def resolve(self, ref: str | ModelRef | ModelVersion) -> ModelVersion:
        """The version a reference (``name``, ``name@3``, ``name@alias``) points at."""
        if isinstance(ref, ModelVersion):
            return ref
        return self.registry.get_version(ref)

    def runtime_spec(self, ref: str | ModelVersion, *, device: str = "cpu") -> RuntimeSpec:
        """The runtime spec of a version, with its artifact fetched and sha256-verified."""
        version = self.resolve(ref)
        path = (
            self.artifacts.fetch(
                version.sha256,
                label=version.ref,
                kind=version.artifact_kind,
                filename=version.filename,
            )
            if version.sha256 is not None
            else None
        )
        return RuntimeSpec(
            flavor=version.flavor,
            path=path,
            signature=version.signature,
            entry=version.entry,
            params=dict(version.params),
            trust_pickle=version.trust_pickle,
            device=device,
            label=version.ref,
        )

    def load(self, ref: str | ModelVersion, *, device: str = "cpu") -> Runtime:
        """Load a version into a predictor, verifying its artifact's sha256 first."""
        return load_runtime(self.runtime_spec(ref, device=device))

    def check(self, ref: str | ModelVersion, *, n_records: int = 8) -> CheckReport:
        """Load a version (verifying sha256) and run the conformance checks on sample rows."""
        version = self.resolve(ref)
        spec = self.runtime_spec(version)
        if version.signature is None:
            raise SignatureError(f"{version.ref} has no signature, so no sample rows can be made.")
        records = version.signature.sample_records(n_records)
        return run_checks(lambda: load_runtime(spec), records, output=version.signature.output)

    def set_alias(self, ref: str, alias: str, *, actor: str | None = None) -> ModelVersion:
        """Point ``alias`` at the version ``ref`` names (``name@N``); the move is recorded."""
        version = self.resolve(ref)
        self.registry.set_alias(version.model, alias, version.version, actor=actor or self.actor)
        return version


def _smoke_test(runtime: Runtime, sig: Signature, name: str, flavor: str) -> None:
    """Predict two rows made from the signature; a model that cannot is refused."""
    sample = sig.sample_records(2, seed=1)
    try:
        runtime.predict(sample)
    except Exception as exc:
        raise RuntimeLoadError(
            f"The {flavor} model for {name!r} failed to predict two sample rows made from its "
            f"signature ({exc}). Check that the signature's inputs match "
            "what the model expects; nothing was registered."
        ) from exc


def _check_flavor(flavor: str) -> str:
    if flavor not in FLAVORS:
        import difflib

        hint = difflib.get_close_matches(flavor, list(FLAVORS), n=1)
        did = f" Did you mean {hint[0]!r}?" if hint else ""
        raise FlavorError(
            f"The flavor must be one of {', '.join(sorted(FLAVORS))}. Got {flavor!r} instead.{did}"
        )
    return flavor


def _check_artifact(flavor: str, artifact: str | Path | None) -> Path | None:
    if artifact is None:
        if flavor == "python":
            return None
        raise ArtifactNotFoundError(
            f"The {flavor} flavor needs an artifact: pass --artifact PATH to the model file."
        )
    path = Path(artifact).expanduser()
    if not path.exists():
        raise ArtifactNotFoundError(
            f"Artifact {str(path)!r} does not exist. Check the path (it is relative to "
            f"{str(Path.cwd())!r})."
        )
    if path.is_dir() and flavor != "python":
        raise FlavorError(
            f"Artifact {str(path)!r} is a folder; the {flavor} flavor takes one file. "
            "Only the python flavor takes a folder."
        )
    return path.absolute()


def _training_age_percentiles(path: Path, event_time: str) -> dict[str, Any]:
    """Percentiles 0..100 of each feature's age at event time, when write times are known."""
    import numpy as np

    from flotilla.audit import training_feature_ages
    from flotilla.errors import AuditError

    try:
        ages = training_feature_ages(path, event_time=event_time)
    except AuditError:  # no <feature>__written_at columns: nothing to keep
        return {}
    return {
        feature: {"percentiles": [float(x) for x in np.percentile(values, range(101))]}
        for feature, values in ages.items()
        if len(values)
    }
