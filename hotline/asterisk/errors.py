"""What can go wrong when speaking to Asterisk's REST interface (ARI), each message naming the request,
what Asterisk said and what to do.

AriError                  ARI refused a request (any status without a class of its own, e.g. 422)
 ├── AriBadRequest        400: a parameter is missing or malformed
 ├── AriUnauthorized      401: wrong ARI user or password
 ├── AriNotFound          404: no such channel, bridge, playback or variable (the call may have hung up)
 ├── AriConflict          409: the thing exists already, or is in a state that forbids the request
 └── AriUnavailable       Asterisk cannot be reached, does not answer in time, or fails (5xx)
"""

from __future__ import annotations


class AriError(Exception):
    """ARI refused `method path`; `status` is None when no HTTP answer came back."""

    hint = ""

    def __init__(self, method: str, path: str, status: int | None, message: str) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.message = message
        answer = f"HTTP {status}" if status is not None else "no answer"
        text = f"ARI {method} {path}: {answer}: {message or 'no message'}"
        super().__init__(f"{text}; {self.hint}" if self.hint else text)


class AriBadRequest(AriError):
    hint = "check the request's parameters against the ARI documentation"


class AriUnauthorized(AriError):
    hint = "check the ARI user and password (ari.conf; HOTLINE_ARI_PASSWORD for the sandbox)"


class AriNotFound(AriError):
    hint = "the channel, bridge or playback is gone (a caller who hung up) or the id is wrong"


class AriConflict(AriError):
    hint = "the id is taken (ids clash by prefix: use fixed-length ids) or the channel is in the wrong state"


class AriUnavailable(AriError):
    hint = "is Asterisk running and ARI enabled (http.conf, ari.conf)? `hotline asterisk status` tells"


_BY_STATUS: dict[int, type[AriError]] = {
    400: AriBadRequest,
    401: AriUnauthorized,
    404: AriNotFound,
    409: AriConflict,
}


def error_for(method: str, path: str, status: int | None, message: str) -> AriError:
    """The error class that fits an HTTP status (None: no answer at all)."""
    if status is None or status >= 500:
        return AriUnavailable(method, path, status, message)
    return _BY_STATUS.get(status, AriError)(method, path, status, message)
