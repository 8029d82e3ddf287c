"""Domain exceptions. Each carries where the problem is so the CLI can print one line."""


class EmpathyDataError(Exception):
    """Base class for errors this package raises on purpose."""


class ConfigError(EmpathyDataError):
    """Bad user input (config, speaker pool, prompts, output dir), found before any model loads."""

    def __init__(self, where: str, reason: str):
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}")


class BackendUnavailable(EmpathyDataError):
    """A backend cannot start: missing package, missing weights, unreachable server."""


class ItemError(EmpathyDataError):
    """One record failed; the run goes on and the record is accounted as failed."""

    def __init__(self, item_id: str, reason: str):
        self.item_id = item_id
        self.reason = reason
        super().__init__(f"{item_id}: {reason}")


class TransientBackendError(EmpathyDataError):
    """A retryable backend fault (HTTP 5xx, timeout, connection reset)."""
