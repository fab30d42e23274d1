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

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from hotline.envfile import read_env_file

#: The environment variable that adds API tokens (comma-separated) to those in the file.
TOKENS_ENV = "HOTLINE_API_TOKENS"
#: The shortest API token accepted: shorter ones can be guessed.
TOKEN_MIN_LENGTH = 16

_ENV_REF = re.compile(r"\$(\$?)\{([^}]*)\}")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOKEN_CHARS = re.compile(r"^[\x21-\x7e]+$")

Loc = tuple[str | int, ...]


class _Place(NamedTuple):
    """1-based (line, column) of a key and of its value."""

    key: tuple[int, int]
    value: tuple[int, int]


class ConfigError(Exception):
    """The config cannot be used; `errors` holds one `file:line:column: key.path: message` per problem."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("\n".join(errors))


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
    enabled: bool = True

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
    ami: AmiConfig = Field(default_factory=AmiConfig)
    agi: AgiConfig = Field(default_factory=AgiConfig)


class RoutingSection(Section):
    """Where the agents and queues are: without a file there is no routing, and a queued caller goes
    straight to the flow's overflow."""

    #: the routing file (routing.example.yaml shows one); None: no routing
    file: Path | None = None


class CallbacksConfig(Section):
    """How call-backs are dialed (with routing on): where a customer's number goes, the Stasis app the
    dialing runs in, and this service's name in the leases that make each call-back happen once."""

    enabled: bool = True
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


def load_config(path: Path | str | None = None, *, environ: Mapping[str, str] | None = None) -> Config:
    """Read, substitute and check the config at `path`; without a path, the defaults (plus the environment)."""
    env = os.environ if environ is None else environ
    errors: list[str] = []
    if path is None:
        source = None
        base = Path.cwd()
        raw: dict[str, Any] = {}
        positions: dict[Loc, _Place] = {}
        name = "(defaults)"
    else:
        source = Path(path)
        base = source.resolve().parent
        name = str(source)
        try:
            text = source.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError([f"{name}: no such file; copy hotline.example.yaml there to start"]) from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError([f"{name}: cannot read the config: {e}"]) from None
        env = _with_env_file(name, text, base, env)
        raw, positions = _parse(name, text, env, errors)
    raw = _add_env_tokens(raw, env, errors)
    if errors:
        raise ConfigError(errors)
    try:
        config = Config.model_validate(raw)
    except ValidationError as e:
        described = sorted(_describe(name, positions, error) for error in e.errors())
        raise ConfigError([text for _, text in described]) from None
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


def _with_env_file(name: str, text: str, base: Path, env: Mapping[str, str]) -> Mapping[str, str]:
    """The environment, plus the `NAME=value` lines of the file that `env_file:` names (relative to the
    config's folder); a variable set in the environment wins over the file."""
    try:
        document = YAML(typ="safe", pure=True).load(text)
    except YAMLError:
        return env  # the full parse reports it with its position
    wanted = document.get("env_file") if isinstance(document, dict) else None
    if not isinstance(wanted, str) or not wanted.strip():
        return env
    path = base / wanted.strip()
    try:
        values = read_env_file(path)
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ConfigError([f"{name}: env_file: cannot read {path}: {reason}"]) from None
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


def _parse(
    name: str, text: str, env: Mapping[str, str], errors: list[str]
) -> tuple[dict[str, Any], dict[Loc, _Place]]:
    """The YAML as plain values, with the 1-based line and column of every key path."""
    yaml = YAML(typ="rt")
    try:
        document = yaml.load(text)
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark is not None else name
        raise ConfigError([f"{where}: not valid YAML: {e.problem or e.context}"]) from None
    except YAMLError as e:
        raise ConfigError([f"{name}: not valid YAML: {e}"]) from None
    if document is None:
        return {}, {}
    if not isinstance(document, CommentedMap):
        raise ConfigError([f"{name}:1:1: the config must be a mapping of keys (data_dir:, store:, api: ...)"])
    positions: dict[Loc, _Place] = {(): _Place((1, 1), (1, 1))}
    plain = _plain(document, (), positions, name, env, errors)
    assert isinstance(plain, dict)
    return plain, positions


def _plain(
    node: Any,
    loc: Loc,
    positions: dict[Loc, _Place],
    name: str,
    env: Mapping[str, str],
    errors: list[str],
) -> Any:
    if isinstance(node, CommentedMap):
        result: dict[str, Any] = {}
        for key, value in node.items():
            child = (*loc, str(key))
            key_line, key_col = node.lc.key(key)
            value_line, value_col = node.lc.value(key)
            positions[child] = _Place((key_line + 1, key_col + 1), (value_line + 1, value_col + 1))
            result[str(key)] = _plain(value, child, positions, name, env, errors)
        return result
    if isinstance(node, CommentedSeq):
        items: list[Any] = []
        for index, value in enumerate(node):
            line, col = node.lc.item(index)
            child = (*loc, index)
            positions[child] = _Place((line + 1, col + 1), (line + 1, col + 1))
            items.append(_plain(value, child, positions, name, env, errors))
        return items
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return _substitute(str(node), loc, positions, name, env, errors)
    return node


def _substitute(
    value: str,
    loc: Loc,
    positions: dict[Loc, _Place],
    name: str,
    env: Mapping[str, str],
    errors: list[str],
) -> str:
    """Replace `${NAME}` from the environment; `$${` stays a literal `${`."""

    def replace(match: re.Match[str]) -> str:
        escaped, var = match.group(1), match.group(2)
        if escaped:
            return "${" + var + "}"
        where = f"{_where(name, positions, loc)}: {_dotted(loc)}"
        if not _ENV_NAME.match(var):
            errors.append(f"{where}: ${{{var}}} is not an environment variable name (letters, digits, _)")
            return ""
        if var not in env:
            errors.append(
                f"{where}: the environment variable {var} is not set; set it or write the value in the file"
            )
            return ""
        return env[var]

    return _ENV_REF.sub(replace, value)


def _add_env_tokens(raw: dict[str, Any], env: Mapping[str, str], errors: list[str]) -> dict[str, Any]:
    value = env.get(TOKENS_ENV, "")
    extra = [token.strip() for token in value.split(",") if token.strip()]
    for number, token in enumerate(extra, 1):
        try:
            _check_token(token)
        except ValueError as e:
            errors.append(f"{TOKENS_ENV}: token {number}: {e}")
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


def _position(positions: Mapping[Loc, _Place], loc: Loc, *, key: bool = False) -> tuple[int, int] | None:
    """(line, column) of the value at `loc` (of its key with `key`); a path the file does not hold is
    placed at its closest enclosing key."""
    if loc in positions:
        return positions[loc].key if key else positions[loc].value
    for end in range(len(loc) - 1, -1, -1):
        if loc[:end] in positions:
            return positions[loc[:end]].key
    return None


def _where(name: str, positions: Mapping[Loc, _Place], loc: Loc, *, key: bool = False) -> str:
    position = _position(positions, loc, key=key)
    return f"{name}:{position[0]}:{position[1]}" if position is not None else name


def _dotted(loc: Loc) -> str:
    return ".".join(str(part) for part in loc) or "(top)"


def _model_at(path: Loc) -> type[BaseModel] | None:
    """The config model of the section at `path` (None: not a section, e.g. inside flows.numbers)."""
    model: type[BaseModel] = Config
    for part in path:
        info = model.model_fields.get(str(part))
        if info is None or not (isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)):
            return None
        model = info.annotation
    return model


def _describe(name: str, positions: Mapping[Loc, _Place], error: Any) -> tuple[tuple[int, int], str]:
    """The error's place in the file (to report in file order) and its message."""
    loc: Loc = tuple(error["loc"])
    path = _dotted(loc)
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        parent = loc[:-1]
        model = _model_at(parent)
        known = list(model.model_fields) if model is not None else []
        message = f"unknown key '{loc[-1]}'"
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        if close:
            message += f" (did you mean '{close[0]}'?)"
        elif known:
            message += f"; the keys here are {', '.join(known)}"
    elif error["type"] == "literal_error":
        message = f"{message.replace('Input should be', 'must be')}"
    elif error["type"] in ("model_type", "dict_type"):
        message = "must be a mapping of keys"
    key = error["type"] == "extra_forbidden"
    return (
        _position(positions, loc, key=key) or (0, 0),
        f"{_where(name, positions, loc, key=key)}: {path}: {message}",
    )
