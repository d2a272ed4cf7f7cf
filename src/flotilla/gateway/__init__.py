"""The availability-first gateway: every deployed model behind deadlines and fallback chains.

Build the ASGI app with :func:`create_app` (or run ``flotilla serve``). Each request is
validated against the live model's signature, answered by the live step within the deadline
minus what the rest of the chain needs, and otherwise by the next step of the chain, down to
a static answer that cannot fail; the response says who answered and why it is degraded.
"""

from __future__ import annotations

from flotilla.gateway._app import DEFAULT_MAX_BODY_BYTES, Gateway, PredictionSink
from flotilla.gateway._breaker import BreakerConfig, CircuitBreaker
from flotilla.gateway._chain import Answer, ChainStep, ServedModel, ShadowStep, budget_reserves
from flotilla.gateway._host import DeploymentSource, HostState, ModelHost
from flotilla.gateway._source import WorkspaceSource
from flotilla.gateway._steps import REASONS, StepFailure
from flotilla.gateway.app import create_app, factory
from flotilla.gateway.shadow import ShadowJob, ShadowMirror

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "REASONS",
    "Answer",
    "BreakerConfig",
    "ChainStep",
    "CircuitBreaker",
    "DeploymentSource",
    "Gateway",
    "HostState",
    "ModelHost",
    "PredictionSink",
    "ServedModel",
    "ShadowJob",
    "ShadowMirror",
    "ShadowStep",
    "StepFailure",
    "WorkspaceSource",
    "budget_reserves",
    "create_app",
    "factory",
]
