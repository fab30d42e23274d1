"""The HTTP query API over the contact store: contacts, customers, events, the OpenAPI document."""

from hotline.api.app import app_from_config, make_app

__all__ = ["app_from_config", "make_app"]
