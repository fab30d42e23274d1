"""The service's one config file, `hotline.yaml`, as pydantic models with `file:line:column` errors.

Every key has a default except the secrets (API tokens, the ARI password, the AMI secret), so an empty
file (or none) is a valid config in which the API refuses every request until a token is configured, and
`hotline serve` asks for the ARI password. Secrets stay out of the file: any string may
hold `${ENV_NAME}`, replaced from the environment, and `HOTLINE_API_TOKENS` (comma-separated) adds
tokens. Relative paths are relative to the config file's folder (to the working folder without a file).

A bad file reads like::

    hotline.yaml:7:5: api.tokens.0: a token needs at least 16 characters (this one has 6)
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, Strict, ValidationError

from hotline.envfile import read_env_file
from yamlfile import Limits, Positions, Problem, Schema, describe, read_yaml

#: The environment variable that adds API tokens (comma-separated) to those in the file.
TOKENS_ENV = "HOTLINE_API_TOKENS"
#: The shortest API token accepted: shorter ones can be guessed.
TOKEN_MIN_LENGTH = 16

_ENV_REF = re.compile(r"\$(\$?)\{([^}]*)\}")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOKEN_CHARS = re.compile(r"^[\x21-\x7e]+$")

Loc = tuple[str | int, ...]

#: Booleans are YAML's true and false, nothing else (`yes`, `on` and `1` are refused, not guessed at).
Boolean = Annotated[bool, Strict()]


class ConfigError(Exception):
    """The config cannot be used; `problems` holds every mistake found, in file order, and `errors` the
    same as `file:line:column: key.path: message` lines."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(sorted(dict.fromkeys(problems)))
        self.errors: list[str] = [str(problem) for problem in self.problems]
        super().__init__("\n".join(self.errors))


def _check_token(token: str) -> str:
    if len(token) < TOKEN_MIN_LENGTH:
        raise ValueError(
            f"a token needs at least {TOKEN_MIN_LENGTH} characters (this one has {len(token)}); "
            "make one with `openssl rand -hex 32`"
        )
    if not _TOKEN_CHARS.match(token):
        raise ValueError("a token may hold only printable ASCII characters, without spaces")
    return token


def _check_listen(listen: str) -> str:
    host, port = _split_listen(listen)
    if not host:
        raise ValueError(f"'{listen}' has no host; write it like 127.0.0.1:8080 or [::1]:8080")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"'{listen}' has no port from 0 to 65535; write it like 127.0.0.1:8080")
    return listen


def _split_listen(listen: str) -> tuple[str, str]:
    host, sep, port = listen.rpartition(":")
    if not sep:
        return listen, ""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


_URL_SCHEMES = {
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "sqlite": "sqlite+aiosqlite",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}


def check_store_url(url: str) -> str:
    """`url` with its async driver named (`postgresql://` -> `postgresql+asyncpg://`); ValueError if no store."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in _URL_SCHEMES:
        raise ValueError(
            "the store URL must start with sqlite+aiosqlite:/// (a file) or postgresql+asyncpg:// "
            "(e.g. postgresql+asyncpg://hotline:${DB_PASSWORD}@db.example.com/hotline)"
        )
    return f"{_URL_SCHEMES[scheme]}://{rest}"


Token = Annotated[str, AfterValidator(_check_token)]


class Section(BaseModel):
    """A part of the config: unknown keys are errors, so a typo never goes unnoticed."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreConfig(Section):
    #: SQLAlchemy URL; None means the SQLite file `hotline.db` in `data_dir`.
    url: Annotated[str, AfterValidator(check_store_url)] | None = None


class ApiConfig(Section):
    listen: Annotated[str, AfterValidator(_check_listen)] = "127.0.0.1:8080"
    tokens: tuple[Token, ...] = ()

    @property
    def host(self) -> str:
        return _split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return int(_split_listen(self.listen)[1])


class FlowsConfig(Section):
    directory: Path = Path("flows")
    #: dialed number -> flow name; any other number gets `default`
    numbers: dict[str, str] = Field(default_factory=dict)
    default: str = "hotline"


def _check_url(url: str) -> str:
    if not url.startswith(("http://", "https://")) or len(url.split("://", 1)[1]) == 0:
        raise ValueError(
            f"'{url}' is not an http:// or https:// URL; write it like http://127.0.0.1:8088/ari"
        )
    return url.rstrip("/")


class AmiConfig(Section):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 5038
    username: str = "hotline"
    #: no default: without a secret the service does not watch AMI
    secret: str | None = None


class AgiConfig(Section):
    listen: Annotated[str, AfterValidator(_check_listen)] = "127.0.0.1:4573"
    enabled: Boolean = True

    @property
    def host(self) -> str:
        return _split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return int(_split_listen(self.listen)[1])


class AsteriskConfig(Section):
    ari_url: Annotated[str, AfterValidator(_check_url)] = "http://127.0.0.1:8088/ari"
    ari_username: str = "hotline"
    #: no default: `hotline serve` refuses to start without it
    ari_password: str | None = None
    app: str = "hotline"
    #: kept-alive HTTP connections the whole service opens to ARI, under Asterisk's `sessionlimit`
    #: (http.conf) with room for the event sockets and other clients
    ari_connections: Annotated[int, Field(ge=2, le=1000)] = 64
    ami: AmiConfig = Field(default_factory=AmiConfig)
    agi: AgiConfig = Field(default_factory=AgiConfig)


class CallsConfig(Section):
    """How many callers the service takes at once, and what a caller beyond that hears: `busy_prompt`
    played before hanging up, or, without one, a busy signal (the call is not answered)."""

    #: None: no limit
    limit: Annotated[int, Field(ge=1, le=100_000)] | None = 200
    busy_prompt: (
        Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_\-./]+$")] | None
    ) = None


class RoutingSection(Section):
    """Where the agents and queues are: without a file there is no routing, and a queued caller goes
    straight to the flow's overflow."""

    #: the routing file (routing.example.yaml shows one); None: no routing
    file: Path | None = None


class CallbacksConfig(Section):
    """How call-backs are dialed (with routing on): where a customer's number goes, the Stasis app the
    dialing runs in, and this service's name in the leases that make each call-back happen once."""

    enabled: Boolean = True
    #: a dial string with `{number}`, the customer's number in E.164 form
    dial: Annotated[str, Field(pattern=r"^[A-Za-z]+/.*\{number\}")] = "PJSIP/{number}@hotline-trunk"
    app: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]+$")] = "hotline-callbacks"
    #: None: the machine's host name; two services sharing one store need different names
    worker: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    dial_timeout: Annotated[float, Field(gt=0, le=300)] = 30.0
    #: the country code (48) that makes a national number a caller types or shows international
    country_code: Annotated[str, Field(pattern=r"^[1-9][0-9]{0,2}$")] | None = None


class LogConfig(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] = "console"


class Config(Section):
    data_dir: Path = Path("var")
    env_file: Path | None = None
    store: StoreConfig = Field(default_factory=StoreConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    flows: FlowsConfig = Field(default_factory=FlowsConfig)
    asterisk: AsteriskConfig = Field(default_factory=AsteriskConfig)
    calls: CallsConfig = Field(default_factory=CallsConfig)
    routing: RoutingSection = Field(default_factory=RoutingSection)
    callbacks: CallbacksConfig = Field(default_factory=CallbacksConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    _source: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        """The file this config came from (None: the defaults)."""
        return self._source

    @property
    def store_url(self) -> str:
        """The store's URL; `load_config` always fills it, this covers a `Config()` built in code."""
        if self.store.url is not None:
            return self.store.url
        from hotline.store.db import default_url

        return default_url(self.data_dir)


#: What a hotline.yaml may hold.
LIMITS = Limits(bytes=1024 * 1024, split="keep the config to its settings")


def load_config(path: Path | str | None = None, *, environ: Mapping[str, str] | None = None) -> Config:
    """Read, substitute and check the config at `path`; without a path, the defaults (plus the environment)."""
    env = os.environ if environ is None else environ
    problems: list[Problem] = []
    raw: dict[str, Any] = {}
    positions = Positions({})
    if path is None:
        source = None
        base = Path.cwd()
        name = "(defaults)"
    else:
        source = Path(path)
        base = source.resolve().parent
        name = str(source)
        try:
            text = source.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(
                [_unplaced(name, "no such file; copy hotline.example.yaml there to start")]
            ) from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError([_unplaced(name, f"cannot read the config: {e}; check the file")]) from None
        document = read_yaml(text, name, limits=LIMITS)
        if not document.readable:
            raise ConfigError(document.problems)
        problems += document.problems
        data = {} if document.data is None else document.data
        if not isinstance(data, dict):
            raise ConfigError([Problem(name, 1, 1, "", f"the file holds {describe(data)}; {_DOCUMENT}")])
        positions = document.positions
        env = _with_env_file(name, data, positions, base, env)
        raw = _substituted(data, (), positions, name, env, problems)
    raw = _add_env_tokens(raw, env, problems)
    if problems:  # a value left empty by a missing variable would only be reported again by the schema
        raise ConfigError(problems)
    config: Config | None = None
    try:
        config = Config.model_validate(raw)
    except ValidationError as e:
        problems += SCHEMA.problems(e, raw, name, positions)
    if problems or config is None:
        raise ConfigError(problems)
    data_dir = base / config.data_dir
    config = config.model_copy(
        update={
            "data_dir": data_dir,
            "flows": config.flows.model_copy(update={"directory": base / config.flows.directory}),
            "routing": config.routing.model_copy(
                update={"file": base / config.routing.file if config.routing.file is not None else None}
            ),
            "store": config.store.model_copy(
                update={
                    "url": _anchor_sqlite(config.store.url, base)
                    if config.store.url
                    else _default_url(data_dir)
                }
            ),
        }
    )
    config._source = source
    return config


_DOCUMENT = "the config is a mapping of keys (data_dir:, store:, api: ...)"

#: Schema errors in the words every YAML file of the service uses.
SCHEMA = Schema(
    Config,
    document=_DOCUMENT,
    patterns={
        r"^[A-Za-z]+/.*\{number\}": (
            "a dial string",
            "write it as TECHNOLOGY/... holding {number}, e.g. PJSIP/{number}@hotline-trunk",
        ),
        r"^[1-9][0-9]{0,2}$": ("a country code", "use 1 to 3 digits without + or a leading 0, e.g. 48"),
    },
)


def _unplaced(name: str, message: str) -> Problem:
    """A problem with the file as a whole, not at a line of it."""
    return Problem(name, 0, 0, "", message)


def _with_env_file(
    name: str, data: Mapping[str, Any], positions: Positions, base: Path, env: Mapping[str, str]
) -> Mapping[str, str]:
    """The environment, plus the `NAME=value` lines of the file that `env_file:` names (relative to the
    config's folder); a variable set in the environment wins over the file."""
    wanted = data.get("env_file")
    if not isinstance(wanted, str) or not wanted.strip():
        return env
    path = base / wanted.strip()
    try:
        values = read_env_file(path)
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ConfigError(
            [
                Problem(
                    name,
                    *positions.of(("env_file",), value=True),
                    "env_file",
                    f"cannot read {path}: {reason}; fix env_file, or create the file",
                )
            ]
        ) from None
    return {**values, **env}


def _anchor_sqlite(url: str, base: Path) -> str:
    """A relative SQLite file is relative to the config's folder, like every other path in it."""
    prefix = "sqlite+aiosqlite:///"
    if not url.startswith(prefix):
        return url
    database, sep, query = url[len(prefix) :].partition("?")
    if not database or database.startswith("/") or database == ":memory:":
        return url
    return f"{prefix}{base / database}{sep}{query}"


def _default_url(data_dir: Path) -> str:
    from hotline.store.db import default_url

    return default_url(data_dir)


def _substituted(
    value: Any, loc: Loc, positions: Positions, name: str, env: Mapping[str, str], problems: list[Problem]
) -> Any:
    """The plain values with `${NAME}` in every text replaced from the environment."""
    if isinstance(value, dict):
        return {
            key: _substituted(item, (*loc, key), positions, name, env, problems)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_substituted(item, (*loc, i), positions, name, env, problems) for i, item in enumerate(value)]
    if isinstance(value, str):
        return _substitute(value, loc, positions, name, env, problems)
    return value


def _substitute(
    value: str, loc: Loc, positions: Positions, name: str, env: Mapping[str, str], problems: list[Problem]
) -> str:
    """Replace `${NAME}` from the environment; `$${` stays a literal `${`."""

    def replace(match: re.Match[str]) -> str:
        escaped, var = match.group(1), match.group(2)
        if escaped:
            return "${" + var + "}"
        line, column = positions.of(loc, value=True)
        path = positions.shown(loc)
        if not _ENV_NAME.match(var):
            problems.append(
                Problem(
                    name,
                    line,
                    column,
                    path,
                    f"${{{var}}} is not an environment variable name; use letters, digits and _",
                )
            )
            return ""
        if var not in env:
            problems.append(
                Problem(
                    name,
                    line,
                    column,
                    path,
                    f"the environment variable {var} is not set; set it or write the value in the file",
                )
            )
            return ""
        return env[var]

    return _ENV_REF.sub(replace, value)


def _add_env_tokens(raw: dict[str, Any], env: Mapping[str, str], problems: list[Problem]) -> dict[str, Any]:
    value = env.get(TOKENS_ENV, "")
    extra = [token.strip() for token in value.split(",") if token.strip()]
    for number, token in enumerate(extra, 1):
        try:
            _check_token(token)
        except ValueError as e:
            problems.append(Problem(TOKENS_ENV, 0, 0, f"token {number}", str(e)))
    if not extra:
        return raw
    api = raw.get("api")
    if api is None:
        api = {}
    if not isinstance(api, dict):
        return raw  # validation reports that api is not a mapping
    tokens = api.get("tokens") or []
    if not isinstance(tokens, list):
        return raw
    merged = list(dict.fromkeys([*tokens, *extra]))
    return {**raw, "api": {**api, "tokens": merged}}
