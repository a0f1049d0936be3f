"""feeds.yaml followed by a long-running process: re-read when its bytes change, an invalid edit
logged (file:line: message, one line per problem) and the last good configuration kept, so a
typo never takes a worker or the site down."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from aggregator.config.load import ConfigError, load_config
from aggregator.types import Config

log = logging.getLogger(__name__)


class ConfigWatcher:
    """The last good configuration read from `path`, and whether the file changed since."""

    def __init__(self, path: str | Path, config: Config) -> None:
        self.path = str(path)
        self.config = config
        self._digest = self._read_digest()

    def _read_digest(self) -> str | None:
        try:
            return hashlib.sha256(Path(self.path).read_bytes()).hexdigest()
        except OSError:
            return None

    def poll(self) -> Config | None:
        """The new configuration if the file changed and validates, else None. A file that
        cannot be read (gone, half-replaced) changes nothing."""
        digest = self._read_digest()
        if digest is None or digest == self._digest:
            return None
        self._digest = digest
        try:
            config = load_config(self.path)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("config rejected, keeping the last good one: %s", problem)
            return None
        log.info("config reloaded path=%s sources=%d", self.path, len(config.sources))
        self.config = config
        return config

    def retry(self) -> None:
        """Offer the current file again at the next poll (applying it failed, not reading it)."""
        self._digest = None
