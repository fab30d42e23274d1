"""Callers' calls on the hotline app: the IVR engine fed on each live call (`runner`), one runner per
caller (`app`)."""

from hotline.calls.app import CallApp
from hotline.calls.runner import CallRunner, Queueing

__all__ = ["CallApp", "CallRunner", "Queueing"]
