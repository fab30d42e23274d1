"""The switchboard: waiting callers, call-backs and agents' phones after the IVR, as one pure engine.

`Switchboard.handle(event, now) -> actions` (`routing.switchboard.engine`) owns the `Router` and its
parties: `WaitingCaller` (`waiting`: the caller-in-queue experience) and `CallbackCall` (`dialing`:
the call-back dialing sequences). `events` and `actions` are its vocabulary.
"""

from routing.switchboard.desk import Settings
from routing.switchboard.engine import Switchboard

__all__ = ["Settings", "Switchboard"]
