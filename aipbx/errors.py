"""Errors of the shared core.

    ConfigError    bad or missing settings (not retryable): the message names the variable to set

Raised by :mod:`aipbx.settings` and the provider factory (:mod:`aipbx.providers.factory`) in every
process that reads them; the ARI app's own errors are in ``ariapp.errors``, the providers' in
:mod:`aipbx.providers.errors`.
"""

from __future__ import annotations


class ConfigError(Exception):
    """A setting is missing or malformed; start-up stops with this message."""

    retryable = False
