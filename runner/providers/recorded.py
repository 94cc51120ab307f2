"""Stand-ins for the providers of a recorded run, for replays: each has the recorded name and
endpoint, so that calls get the keys they had, and refuses to be called."""

from __future__ import annotations

from runner.providers.base import ModelReply, ModelRequest, ProviderError


class RecordedProvider:
    """A provider of a recorded run that a replay answers for; it makes no calls."""

    retries_transient = True

    def __init__(self, name: str, endpoint: str | None) -> None:
        self.name = name
        self.endpoint = endpoint

    async def complete(self, request: ModelRequest) -> ModelReply:
        """Never called by a replay; refuse rather than reach a provider."""
        raise ProviderError(
            f"provider {self.name!r}: a replay makes no model calls ({request.node_id}); "
            "use --allow-live to make the calls the trace does not answer"
        )
