"""The REST API."""

from trainops.api.app import API_PREFIX, create_app

__all__ = ["API_PREFIX", "create_app"]
