"""The `delivery:` block of an integration's settings.yaml, one model per target type.

Secrets are never values here: `password_env` and `key_path_env` name environment variables
that are read at the moment of delivery.
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import ConfigDict, Field, model_validator

from lb_pipelines.validation import Strict


class OutboxDelivery(Strict):
    """Write to `$LB_OUTBOX_DIR/<integration>/` (the embedded default)."""

    type: Literal["outbox"] = "outbox"


class DryRunDelivery(Strict):
    """Record exactly what would be sent, without sending it (user-acceptance testing)."""

    type: Literal["dry_run"]


class SftpDelivery(Strict):
    """Upload to an SFTP server; the host key must be in `known_hosts` (never auto-added)."""

    type: Literal["sftp"]
    host: str
    port: int = Field(22, ge=1, le=65535)
    username: str
    password_env: Optional[str] = None
    key_path_env: Optional[str] = None
    known_hosts: str  # path to an OpenSSH known_hosts file holding the server's host key
    remote_dir: str = "."
    timeout_s: float = Field(30.0, gt=0)
    retries: int = Field(3, ge=0, le=10)

    @model_validator(mode="after")
    def _one_credential(self) -> "SftpDelivery":
        if bool(self.password_env) == bool(self.key_path_env):
            raise ValueError("give exactly one of password_env or key_path_env (names of environment variables)")
        return self


class HttpDelivery(Strict):
    """Push to a vendor API (integrations that push; the adapter owns the HTTP shape)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: Literal["http"]
    base_url: str


Delivery = Annotated[
    Union[OutboxDelivery, DryRunDelivery, SftpDelivery, HttpDelivery], Field(discriminator="type")
]


class PushDelivery(Strict):
    """The `delivery:` block of an API push: `http` sends, `dry_run` writes every request that would
    be sent, `shadow` reads the target and writes the difference a push would make, sending nothing.
    Each push subclasses it with its connection keys (needed by http and shadow)."""

    type: Literal["http", "dry_run", "shadow"] = "dry_run"
    timeout_s: float = Field(30.0, gt=0)  # per request
    attempts: int = Field(5, ge=1, le=10)  # per request, the first one included
    max_retry_seconds: float = Field(120.0, gt=0)  # no retry starts after this long
    max_in_flight: int = Field(4, ge=1, le=16)  # requests at once per target (a mailbox, a zone)
    workers: int = Field(8, ge=1, le=32)  # requests at once in all

    def connection_keys(self) -> tuple[str, ...]:
        """The keys http and shadow need (a dry run needs none)."""
        return ()

    @model_validator(mode="after")
    def _connection_given(self) -> "PushDelivery":
        if self.type != "dry_run":
            missing = [k for k in self.connection_keys() if getattr(self, k) in (None, "")]
            if missing:
                raise ValueError(f"type {self.type} needs {', '.join(missing)}")
        return self
