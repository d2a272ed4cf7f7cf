"""The production :class:`~flotilla.gateway._host.DeploymentSource`: a Flotilla workspace."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flotilla.types import Predictor

if TYPE_CHECKING:
    from flotilla.runtimes import RuntimeSpec
    from flotilla.workspace import Workspace

__all__ = ["WorkspaceSource"]


class WorkspaceSource:
    """Reads deployments from a workspace's registry and loads versions through it.

    Args:
        workspace: an open :class:`flotilla.workspace.Workspace`.
        device: where models run (``cpu`` or ``gpu``).
    """

    def __init__(self, workspace: Workspace, *, device: str = "cpu") -> None:
        self.workspace = workspace
        self.device = device

    def deployments_version(self) -> int:
        """Changes whenever a deployment revision is written or an alias moves."""
        return int(self.workspace.registry.deployments_version())

    def current_deployments(self) -> list[Any]:
        """The current revision of every deployed model."""
        return list(self.workspace.registry.current_deployments())

    def resolve(self, ref: str) -> Any:
        """The version ``ref`` (``name@3``, ``name@alias``, ``name``) names now."""
        return self.workspace.resolve(ref)

    def runtime_spec(self, version: Any) -> RuntimeSpec:
        """What a worker process needs to load ``version`` (artifact fetched and verified)."""
        return self.workspace.runtime_spec(version, device=self.device)

    def load(self, version: Any, *, device: str | None = None) -> Predictor:
        """Fetch the sha256-verified artifact and load it on ``device`` (default: ours)."""
        runtime: Predictor = self.workspace.load(version, device=device or self.device)
        return runtime
