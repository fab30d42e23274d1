"""A set of loaded flows that may `goto` each other, frozen as one version.

A call keeps the `FlowSet` it started with, so a reload never changes a call in progress.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from ivr.model import Flow


@dataclass(frozen=True)
class FlowSet:
    flows: Mapping[str, Flow]
    #: where each flow came from (a file name), for messages
    sources: Mapping[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Flow:
        return self.flows[name]

    def __contains__(self, name: object) -> bool:
        return name in self.flows

    def __iter__(self) -> Iterator[str]:
        return iter(self.flows)

    def __len__(self) -> int:
        return len(self.flows)
