"""Agents and queues in the service: the switchboard on Asterisk (`service.RoutingService`) and the
agents' feature codes (`features`)."""

from hotline.agents.service import RoutingService

__all__ = ["RoutingService"]
