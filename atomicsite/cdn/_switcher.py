"""What the CloudFront switchers share: settings, clients, retries, and skipping other channels."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..retry import RetryPolicy
from .aws import ClientFactory, boto3_client_factory
from .settings import CloudFrontSettings
from .switching import SwitchContext, SwitchReport


class _CloudFrontSwitcher:
    service = "cloudfront"

    def __init__(self, settings: CloudFrontSettings, client_factory: ClientFactory | None = None, *,
                 retry: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self._factory = client_factory or boto3_client_factory(settings)
        self._retry = retry or RetryPolicy()
        self._sleep, self._clock = sleep, clock

    @property
    def client(self) -> Any:
        return self._factory(self.service)

    def _skip(self, ctx: SwitchContext) -> SwitchReport | None:
        s = self.settings
        if ctx.channel == s.channel:
            return None
        return SwitchReport(self.name, True,
                            f"skipped: distribution {s.distribution_id} serves channel {s.channel!r}, not {ctx.channel!r}",
                            {"skipped": True, "distribution_id": s.distribution_id})
