"""The Dagster resource that opens the configured Lightning Bolt source.

Directory source by default; the HTTP API when an API URL is configured (`LB_API_URL`).
Credentials are read from environment variables at the moment of use, by name, so their
values never enter Dagster's resource config, run config or the UI.
"""


import os
from typing import Optional

import dagster as dg

from lb_pipelines import settings
from lb_pipelines.lightning_bolt.source.directory import DirectorySource
from lb_pipelines.lightning_bolt.source import LightningBoltSource


class LightningBoltResource(dg.ConfigurableResource):
    """Where Lightning Bolt records come from."""

    source_dir: Optional[str] = None  # default: LB_SOURCE_DIR, else the bundled sample
    api_url: Optional[str] = None  # default: LB_API_URL; when set, the API is read instead
    client_id_env: str = "LB_CLIENT_ID"
    client_secret_env: str = "LB_CLIENT_SECRET"
    page_size: int = 1000
    max_attempts: int = 6  # per request, the first included (5xx, connection errors, 429)
    backoff_initial: float = 0.5  # seconds before the first retry; doubles, with jitter

    def open(self) -> LightningBoltSource:
        api_url = self.api_url or settings.api_url()
        if not api_url:
            return DirectorySource(self.source_dir or settings.source_dir())
        from lb_pipelines.lightning_bolt.source.api_client import ApiClient

        missing = [v for v in (self.client_id_env, self.client_secret_env) if not os.environ.get(v)]
        if missing:
            raise dg.Failure(
                f"Lightning Bolt API {api_url} is configured but {' and '.join(missing)} "
                "is not set in the environment"
            )
        return ApiClient(
            api_url,
            os.environ[self.client_id_env],
            os.environ[self.client_secret_env],
            page_size=self.page_size,
            max_attempts=self.max_attempts,
            backoff_initial=self.backoff_initial,
        )
