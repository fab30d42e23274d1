"""Call-backs in the service: the requests callers make in a flow, kept in the store (`requests`), and
the worker that hands due call-backs to the switchboard (`worker`)."""

from hotline.callbacks.requests import CallbackRequests, keep_callback

__all__ = ["CallbackRequests", "keep_callback"]
