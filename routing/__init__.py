"""Skill-based routing (ACD): agents, queues, waiting contacts, wait estimates. Pure: events in, actions out."""
