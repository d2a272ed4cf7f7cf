"""The ``onnx`` flavor: ONNX models run by ONNX Runtime (CPU by default, CUDA on request).

Inputs: either one 2-D tensor (columns in the order of the model's ``feature_names``
metadata when present, else the signature's field order) or one 1-column tensor per field,
named like the field (float, int64, string or bool tensors). Outputs are picked per the
signature's kind: ``probability`` reads the probability output (``zipmap`` sequence of maps
or a plain ``[N, 2]`` tensor), ``label`` the label output, ``score`` the first numeric
output, ``items`` the first output's rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from flotilla.errors import FlavorError, PredictionError, RuntimeLoadError
from flotilla.runtimes._inputs import ColumnPlan, plan_columns
from flotilla.runtimes._outputs import output_kind, to_plain_list
from flotilla.runtimes.base import BaseRuntime, RuntimeMetadata, RuntimeSpec
from flotilla.types import Record

__all__ = [
    "FEATURE_NAMES_KEY",
    "OnnxRuntime",
    "make_session",
    "onnx_feature_names",
    "session_runner",
]

FEATURE_NAMES_KEY = "feature_names"
"""Model metadata key holding a JSON list of the columns of a single 2-D input."""

_DTYPES: dict[str, Any] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
    "tensor(string)": object,
}
_NUMERIC_OUT = ("tensor(float)", "tensor(double)")
_LABEL_OUT = ("tensor(int64)", "tensor(int32)", "tensor(string)", "tensor(bool)")


def make_session(path: Path, *, device: str, label: str) -> Any:
    """An ``InferenceSession`` tuned for low latency (one intra-op thread).

    Raises:
        FlavorError: the file is not a valid ONNX model.
        RuntimeLoadError: ``device="gpu"`` without the CUDA provider, or ORT cannot load it.
    """
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if device == "gpu":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise RuntimeLoadError(
                f"The model {label} asks for a GPU, but ONNX Runtime has no "
                f"CUDAExecutionProvider here (available: {ort.get_available_providers()}). "
                "Install onnxruntime-gpu with a matching CUDA, or deploy it with tier 'cpu'."
            )
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:
        if type(exc).__name__ in ("InvalidProtobuf", "InvalidGraph", "InvalidArgument"):
            whose = path.name if label == path.name else f"of {label} ({path.name})"
            raise FlavorError(f"The artifact {whose} is not a valid ONNX model: {exc}") from exc
        raise RuntimeLoadError(f"ONNX Runtime could not load {label}: {exc}") from exc


def session_runner(
    session: Any, device: str
) -> Callable[[list[str], dict[str, Any], Any], list[Any]]:
    """The callable that runs ``session``: ``run(output_names, feed, run_options)``.

    For a CPU session this is the native session's own ``run`` (measured: about 1.1 us less
    per call than ``InferenceSession.run``, whose Python checks only matter for feeds of
    ``OrtValue`` objects, WebGPU graph capture and the CUDA-to-CPU fallback, none of which a
    CPU session fed numpy arrays uses). Anything else, or an ONNX Runtime without that
    attribute, goes through ``InferenceSession.run``.
    """
    run: Any = getattr(getattr(session, "_sess", None), "run", None)
    if device == "cpu" and callable(run):
        return run  # type: ignore[no-any-return]
    return session.run  # type: ignore[no-any-return]


def onnx_feature_names(session: Any) -> list[str] | None:
    """The ``feature_names`` metadata of the model (a JSON list), if any."""
    raw = session.get_modelmeta().custom_metadata_map.get(FEATURE_NAMES_KEY)
    if not raw:
        return None
    try:
        names = json.loads(raw)
    except ValueError:
        return None
    if isinstance(names, list) and all(isinstance(n, str) for n in names):
        return names
    return None


def _width(shape: list[Any]) -> int | None:
    return shape[1] if len(shape) == 2 and isinstance(shape[1], int) else None


class OnnxRuntime(BaseRuntime):
    """Predict with an ONNX model through ONNX Runtime (see the module docstring)."""

    flavor = "onnx"

    def __init__(self, spec: RuntimeSpec) -> None:
        super().__init__(spec)
        self._session: Any = None
        self._run: Callable[[list[str], dict[str, Any], Any], list[Any]] | None = None
        self._plan: ColumnPlan | None = None
        self._feed: Callable[[list[Record]], dict[str, Any]] | None = None
        self._output = ""
        self._post: Callable[[Any], Any] = lambda out: out
        self._kind = ""

    def _load(self) -> None:
        path = self._artifact()
        session = make_session(path, device=self.spec.device, label=self.spec.name)
        inputs = session.get_inputs()
        names = [i.name for i in inputs]
        fields = set(self.spec.signature.field_names) if self.spec.signature else set()
        if len(inputs) == 1 and len(inputs[0].shape) == 2 and names[0] not in fields:
            self._matrix_input(session, inputs[0])
        else:
            plan = plan_columns(self.spec.signature, names, label=self.spec.name)
            self._plan = plan
            dtypes = [_DTYPES.get(i.type, np.float32) for i in inputs]
            ranks = [len(i.shape) for i in inputs]
            self._feed = lambda records: self._column_feed(records, dtypes, ranks)
        self._session = session
        self._run = session_runner(session, self.spec.device)
        self._pick_output(session.get_outputs())

    def _matrix_input(self, session: Any, node: Any) -> None:
        plan = plan_columns(
            self.spec.signature,
            onnx_feature_names(session),
            label=self.spec.name,
            n_features=_width(node.shape),
        )
        if not plan.numeric:
            raise RuntimeLoadError(
                f"The ONNX model {self.spec.name} takes one numeric matrix, but its signature "
                "has string/category fields. Export the model with one input per field."
            )
        dtype = _DTYPES.get(node.type, np.float32)
        name = node.name
        self._plan = plan
        self._feed = lambda records: {name: plan.to_array(records, dtype)}

    def _column_feed(
        self, records: list[Record], dtypes: list[Any], ranks: list[int]
    ) -> dict[str, Any]:
        assert self._plan is not None
        columns = self._plan.convert_columns(records)
        feed: dict[str, Any] = {}
        for name, column, dtype, rank in zip(self._plan.names, columns, dtypes, ranks, strict=True):
            if dtype is object:
                array = np.array(["" if v is None else v for v in column], dtype=object)
            else:
                with np.errstate(over="ignore", invalid="ignore"):  # out of range -> inf
                    array = np.array(column, dtype=np.float64).astype(dtype)
            feed[name] = array.reshape(-1, 1) if rank == 2 else array
        return feed

    def _pick_output(self, outputs: list[Any]) -> None:
        prob = next((o for o in outputs if o.type.startswith("seq(map")), None)
        if prob is None:
            prob = next(
                (o for o in outputs if o.type in _NUMERIC_OUT and "prob" in o.name.lower()), None
            )
        label_out = next((o for o in outputs if o.type in _LABEL_OUT), None)
        numeric = [o for o in outputs if o.type in _NUMERIC_OUT]
        default = "probability" if prob is not None else "score"
        kind = output_kind(self.spec.signature, default)
        self._kind = kind
        if kind == "items":
            self._output, self._post = outputs[0].name, lambda out: out
        elif kind == "label" and label_out is not None:
            self._output, self._post = label_out.name, lambda out: out
        elif kind == "label" and prob is not None:
            self._output, self._post = prob.name, _argmax
        elif kind == "probability" or (
            kind == "score" and prob is not None and not _rest(numeric, prob)
        ):
            if prob is None:
                prob = numeric[0] if numeric else None
            if prob is None:
                raise RuntimeLoadError(
                    f"The ONNX model {self.spec.name} has no probability output (outputs: "
                    f"{[(o.name, o.type) for o in outputs]}); use output kind 'label' or 'score'."
                )
            self._output, self._post = prob.name, _positive
        else:
            if not numeric:
                raise RuntimeLoadError(
                    f"The ONNX model {self.spec.name} has no numeric output for kind {kind!r} "
                    f"(outputs: {[(o.name, o.type) for o in outputs]})."
                )
            self._output, self._post = numeric[0].name, _last_column

    def predict(self, records: list[Record]) -> list[Any]:
        """One prediction per record (see the module docstring)."""
        self._require_loaded()
        if not records:
            return []
        assert self._feed is not None and self._run is not None
        feed = self._feed(records)
        try:
            out = self._run([self._output], feed, None)[0]
            values = self._post(out)
        except Exception as exc:
            raise PredictionError(
                f"The ONNX model {self.spec.name} failed to predict: {exc}"
            ) from exc
        return to_plain_list(values, len(records), label=self.spec.name)

    def metadata(self) -> RuntimeMetadata:
        """Flavor, input order, output kind, providers, opsets and ONNX Runtime version."""
        import onnxruntime as ort

        extra: dict[str, Any] = {"onnxruntime_version": ort.__version__}
        providers: list[str] = []
        if self._session is not None:
            providers = list(self._session.get_providers())
            meta = self._session.get_modelmeta()
            extra["producer"] = meta.producer_name
            extra["output"] = self._output
        return RuntimeMetadata(
            flavor=self.flavor,
            inputs=list(self._plan.names) if self._plan else None,
            output_kind=self._kind or None,
            device=self.spec.device,
            providers=providers,
            extra=extra,
        )


def _rest(numeric: list[Any], prob: Any) -> list[Any]:
    return [o for o in numeric if o.name != prob.name]


def _positive(out: Any) -> Any:
    if isinstance(out, list):  # zipmap: one {class: p} dict per row
        if not out:
            return out
        keys = list(out[0])
        key = 1 if 1 in out[0] else keys[-1]
        if len(keys) > 2:
            raise PredictionError(
                f"The model has {len(keys)} classes; output kind 'probability' needs a binary "
                "classifier. Use 'label'."
            )
        return [row[key] for row in out]
    array = np.asarray(out)
    if array.ndim == 2:
        if array.shape[1] > 2:
            raise PredictionError(
                f"The model has {array.shape[1]} classes; output kind 'probability' needs a "
                "binary classifier. Use 'label'."
            )
        return array[:, -1]
    return array


def _argmax(out: Any) -> Any:
    if isinstance(out, list):
        return [max(row, key=row.__getitem__) for row in out]
    return np.asarray(out).argmax(axis=1)


def _last_column(out: Any) -> Any:
    array = np.asarray(out)
    return array[:, -1] if array.ndim == 2 else array
