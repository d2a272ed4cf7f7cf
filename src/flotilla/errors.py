"""Flotilla's one exception hierarchy.

Every error Flotilla raises on purpose derives from :class:`FlotillaError`. Subclasses also
inherit the matching builtin (``ModelNotFoundError`` is a ``KeyError``) so that generic code
can catch them, and each declares the ``http_status`` the gateway answers with. Messages say
what is wrong and what to do about it.

This module imports only the standard library.
"""

from __future__ import annotations

__all__ = [
    "AliasNotFoundError",
    "ArtifactError",
    "ArtifactIntegrityError",
    "ArtifactNotFoundError",
    "AuditError",
    "ConfigError",
    "ConflictError",
    "DeploymentError",
    "FlavorError",
    "FlotillaError",
    "ImmutableError",
    "InputValidationError",
    "LeakageRiskError",
    "ModelNotFoundError",
    "NotFoundError",
    "PredictionError",
    "RecordsError",
    "RuntimeLoadError",
    "SignatureError",
    "StorageError",
    "UnsafeArtifactError",
    "VersionNotFoundError",
]


class FlotillaError(Exception):
    """Root of every error Flotilla raises on purpose.

    Attributes:
        http_status: the HTTP status the gateway answers with for this error.
    """

    http_status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.message


class ConfigError(FlotillaError, ValueError):
    """A setting, option or configuration file is invalid."""

    http_status = 400


class SignatureError(ConfigError):
    """A model signature (input fields, output kind) is invalid or missing."""


class DeploymentError(ConfigError):
    """A portfolio or deployment is invalid (chain, references, deadlines)."""


class InputValidationError(FlotillaError, ValueError):
    """Records do not satisfy a model's signature.

    Attributes:
        violations: one ``{"row", "field", "problem"}`` dict per violation.
    """

    http_status = 422

    def __init__(self, message: str, violations: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.violations = violations or []


class NotFoundError(FlotillaError, KeyError):
    """Something named does not exist."""

    http_status = 404


class ModelNotFoundError(NotFoundError):
    """No model has this name."""


class VersionNotFoundError(NotFoundError):
    """The model exists but has no such version."""


class AliasNotFoundError(NotFoundError):
    """The model exists but no alias of that name points at a version."""


class ConflictError(FlotillaError):
    """The request conflicts with what is stored (e.g. same name, different task)."""

    http_status = 409


class ImmutableError(ConflictError):
    """A registered version cannot be changed."""


class ArtifactError(FlotillaError):
    """An artifact cannot be stored or read."""

    http_status = 500


class ArtifactNotFoundError(ArtifactError, FileNotFoundError):
    """An artifact file is missing (on disk or in the store)."""


class ArtifactIntegrityError(ArtifactError):
    """An artifact's bytes do not match the sha256 recorded at registration."""


class UnsafeArtifactError(ArtifactError):
    """Loading the artifact would execute untrusted code (pickle) and it is not trusted."""

    http_status = 400


class FlavorError(FlotillaError, ValueError):
    """Unknown flavor, or an artifact that is not what its flavor says."""

    http_status = 400


class RuntimeLoadError(FlotillaError):
    """A version could not be loaded into a predictor."""


class PredictionError(FlotillaError):
    """A predictor failed or returned an output that breaks its signature."""


class StorageError(FlotillaError):
    """The registry database or artifact storage cannot be used (unreachable, read-only)."""

    http_status = 503


class RecordsError(FlotillaError):
    """Prediction or outcome records cannot be written or read."""


class AuditError(FlotillaError, ValueError):
    """An audit cannot run on the data given (missing column, unparsable time)."""

    http_status = 400


class LeakageRiskError(FlotillaError):
    """The training-data audit found errors and the risk was not accepted."""

    http_status = 409
