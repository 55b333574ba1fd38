"""Errors a user can fix, which the command line reports in one line with exit status 2 (with
:class:`ledrec.io.ArtifactError` for artifacts and :class:`ledrec.data.interactions.DataError` for data)."""

from __future__ import annotations


class ConfigError(ValueError):
    """An option value, or a combination of options, that cannot work: the message names the option."""
