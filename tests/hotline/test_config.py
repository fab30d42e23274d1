"""The service config: defaults, every key, environment secrets, and errors as file:line:column."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from ruamel.yaml import YAML

from hotline.config import TOKENS_ENV, AmiConfig, AsteriskConfig, Config, ConfigError, load_config
from hotline.store.db import default_url
from support.paths import ROOT

TOKEN = "crm-token-0123456789abcdef"
OTHER = "other-token-9876543210fedcba"


def write(tmp_path: Path, text: str, name: str = "hotline.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(path: Path | None, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=environ or {})
    assert str(caught.value) == "\n".join(caught.value.errors)
    return caught.value.errors


def test_no_file_gives_the_defaults_in_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(None, environ={})
    assert config.source is None
    assert config.data_dir == tmp_path / "var"
    assert config.store.url == default_url(tmp_path / "var")
    assert config.store_url == config.store.url
    assert (config.api.listen, config.api.host, config.api.port) == ("127.0.0.1:8080", "127.0.0.1", 8080)
    assert config.api.tokens == ()
    assert config.flows.directory == tmp_path / "flows"
    assert (config.log.level, config.log.format) == ("info", "console")


def test_an_empty_file_is_the_defaults_beside_it(tmp_path: Path) -> None:
    path = write(tmp_path, "# nothing yet\n")
    config = load_config(path, environ={})
    assert config.source == path
    assert config.data_dir == tmp_path / "var"
    assert config.store.url == default_url(tmp_path / "var")


def test_every_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""\
data_dir: state
store:
  url: postgresql://hotline:secret@db.example.com:5433/hotline
api:
  listen: "[::1]:9090"
  tokens: [{TOKEN}, {OTHER}, {TOKEN}]
flows:
  directory: /srv/flows
log:
  level: debug
  format: json
""",
    )
    config = load_config(path, environ={})
    assert config.data_dir == tmp_path / "state"
    assert config.store.url == "postgresql+asyncpg://hotline:secret@db.example.com:5433/hotline"
    assert (config.api.host, config.api.port) == ("::1", 9090)
    assert config.api.tokens == (TOKEN, OTHER, TOKEN)
    assert config.flows.directory == Path("/srv/flows")
    assert (config.log.level, config.log.format) == ("debug", "json")


def test_a_relative_sqlite_file_is_relative_to_the_config(tmp_path: Path) -> None:
    path = write(tmp_path, "store: {url: 'sqlite:///db/contacts.db'}\n")
    assert load_config(path, environ={}).store.url == f"sqlite+aiosqlite:///{tmp_path}/db/contacts.db"
    path = write(tmp_path, "store: {url: 'sqlite+aiosqlite:////srv/hotline.db'}\n")
    assert load_config(path, environ={}).store.url == "sqlite+aiosqlite:////srv/hotline.db"


def test_environment_variables_fill_strings(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
store:
  url: postgresql+asyncpg://hotline:${DB_PASSWORD}@${DB_HOST}/hotline
api:
  tokens:
    - ${CRM_TOKEN}
flows:
  directory: $${literal}
""",
    )
    config = load_config(path, environ={"DB_PASSWORD": "p@ss", "DB_HOST": "db", "CRM_TOKEN": TOKEN})
    assert config.store.url == "postgresql+asyncpg://hotline:p@ss@db/hotline"
    assert config.api.tokens == (TOKEN,)
    assert config.flows.directory == tmp_path / "${literal}"


def test_a_missing_environment_variable_is_named_where_it_is_used(tmp_path: Path) -> None:
    path = write(tmp_path, "api:\n  tokens:\n    - ${CRM_TOKEN}\nstore:\n  url: ${DB_URL}\n")
    assert errors_of(path) == [
        f"{path}:3:7: api.tokens.0: the environment variable CRM_TOKEN is not set; "
        "set it or write the value in the file",
        f"{path}:5:8: store.url: the environment variable DB_URL is not set; set it or write the value in the file",
    ]


def test_hotline_api_tokens_adds_tokens(tmp_path: Path) -> None:
    path = write(tmp_path, f"api:\n  tokens: [{TOKEN}]\n")
    config = load_config(path, environ={TOKENS_ENV: f" {OTHER} , {TOKEN},"})
    assert config.api.tokens == (TOKEN, OTHER)
    assert load_config(None, environ={TOKENS_ENV: OTHER}).api.tokens == (OTHER,)


def test_a_short_token_is_refused_without_showing_it(tmp_path: Path) -> None:
    path = write(tmp_path, "api:\n  tokens:\n    - hunter2\n")
    errors = errors_of(path)
    assert errors == [
        f"{path}:3:7: api.tokens.0: a token needs at least 16 characters (this one has 7); "
        "make one with `openssl rand -hex 32`"
    ]
    errors = errors_of(None, {TOKENS_ENV: f"{TOKEN},hunter2"})
    assert errors == [
        f"{TOKENS_ENV}: token 2: a token needs at least 16 characters (this one has 7); "
        "make one with `openssl rand -hex 32`"
    ]
    assert "hunter2" not in "".join(errors)


def test_a_token_with_a_space_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "api:\n  tokens: ['0123456789 abcdef']\n")
    assert errors_of(path) == [
        f"{path}:2:12: api.tokens.0: a token may hold only printable ASCII characters, without spaces"
    ]


def test_every_problem_is_reported_with_its_place(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
data_dir: var
api:
  listen: localhost
  toknes: []
log:
  level: loud
  format: json
store:
  url: mysql://db/hotline
flow: {}
""",
    )
    assert errors_of(path) == [
        f"{path}:3:11: api.listen: 'localhost' has no port from 0 to 65535; write it like 127.0.0.1:8080",
        f"{path}:4:3: api.toknes: unknown key 'toknes'; did you mean 'tokens'?",
        f"{path}:6:10: log.level: expected one of 'debug', 'info', 'warning', 'error', got 'loud'; "
        "write one of them",
        f"{path}:9:8: store.url: the store URL must start with sqlite+aiosqlite:/// (a file) or "
        "postgresql+asyncpg:// (e.g. postgresql+asyncpg://hotline:${DB_PASSWORD}@db.example.com/hotline)",
        f"{path}:10:1: flow: unknown key 'flow'; did you mean 'flows'?",
    ]


def test_the_asterisk_section_and_flow_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
flows:
  numbers:
    100: hotline
    "+48221234567": sales
  default: sales
asterisk:
  ari_url: http://10.0.0.5:8088/ari/
  ari_username: ivr
  ari_password: ${ARI_PASSWORD}
  app: ivr
  ami: {host: 10.0.0.5, port: 5039, username: watcher, secret: s3cret}
  agi: {listen: "0.0.0.0:4574", enabled: false}
""",
    )
    config = load_config(path, environ={"ARI_PASSWORD": "pw"})
    assert config.flows.numbers == {"100": "hotline", "+48221234567": "sales"}
    assert config.flows.default == "sales"
    asterisk = config.asterisk
    assert (asterisk.ari_url, asterisk.ari_username, asterisk.ari_password, asterisk.app) == (
        "http://10.0.0.5:8088/ari",
        "ivr",
        "pw",
        "ivr",
    )
    assert (asterisk.ami.host, asterisk.ami.port, asterisk.ami.username, asterisk.ami.secret) == (
        "10.0.0.5",
        5039,
        "watcher",
        "s3cret",
    )
    assert (asterisk.agi.host, asterisk.agi.port, asterisk.agi.enabled) == ("0.0.0.0", 4574, False)


def test_the_secrets_of_asterisk_have_no_default(tmp_path: Path) -> None:
    config = load_config(None, environ={})
    assert (config.asterisk.ari_password, config.asterisk.ami.secret) == (None, None)
    assert (config.asterisk.ari_url, config.asterisk.app, config.asterisk.agi.listen) == (
        "http://127.0.0.1:8088/ari",
        "hotline",
        "127.0.0.1:4573",
    )


def test_mistakes_in_the_asterisk_section(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "asterisk:\n  ari_url: 127.0.0.1:8088\n  ami:\n    secrt: x\n    port: 0\n  agi: {listen: agi}\n",
    )
    assert errors_of(path) == [
        f"{path}:2:12: asterisk.ari_url: '127.0.0.1:8088' is not an http:// or https:// URL; "
        "write it like http://127.0.0.1:8088/ari",
        f"{path}:4:5: asterisk.ami.secrt: unknown key 'secrt'; did you mean 'secret'?",
        f"{path}:5:11: asterisk.ami.port: must be at least 1, got 0; write a whole number from 1 to 65535",
        f"{path}:6:17: asterisk.agi.listen: 'agi' has no port from 0 to 65535; write it like 127.0.0.1:8080",
    ]


def test_a_section_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "api: 8080\n")
    assert errors_of(path) == [
        f"{path}:1:6: api: expected a mapping, got 8080; write key: value entries under it"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "- a\n- b\n",
            "1:1: the file holds a list; the config is a mapping of keys (data_dir:, store:, api: ...)",
        ),
        ("api:\n  listen: [\n", "2:11: the '[' here is not closed; close it with ']'"),
        ("log: {}\nlog: {}\n", "2:1: log: duplicate key 'log' (first at line 1); keep one of them"),
    ],
)
def test_a_file_that_is_not_a_config(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    [error] = errors_of(path)
    assert error.startswith(f"{path}:{expected}")


def test_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    assert errors_of(path) == [f"{path}: no such file; copy hotline.example.yaml there to start"]


def _keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys = set()
    for name, info in model.model_fields.items():
        keys.add(prefix + name)
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            keys |= _keys(info.annotation, f"{prefix}{name}.")
    return keys


def _written(mapping: dict[str, Any], prefix: str = "") -> set[str]:
    keys = set()
    for name, value in mapping.items():
        keys.add(prefix + name)
        if isinstance(value, dict):
            keys |= _written(value, f"{prefix}{name}.")
    return keys


def test_the_example_config_shows_every_key_and_loads() -> None:
    example = ROOT / "hotline.example.yaml"
    assert _written(YAML(typ="safe").load(example.read_text(encoding="utf-8"))) == _keys(Config)
    secrets = {"HOTLINE_CRM_TOKEN": TOKEN, "HOTLINE_ARI_PASSWORD": "ari-pw", "HOTLINE_AMI_SECRET": "ami-pw"}
    config = load_config(example, environ=secrets)
    assert config.api.tokens == (TOKEN,)
    assert config.store.url == default_url(ROOT / "var")
    assert (config.asterisk.ari_password, config.asterisk.ami.secret) == ("ari-pw", "ami-pw")
    assert config.asterisk == AsteriskConfig(ari_password="ari-pw", ami=AmiConfig(secret="ami-pw"))
    assert (config.flows.numbers, config.flows.default) == ({}, "hotline")
    errors = errors_of(example)
    assert [error.split(": ", 2)[1] for error in errors] == [
        "api.tokens.0",
        "asterisk.ari_password",
        "asterisk.ami.secret",
    ]
    assert all("is not set" in error for error in errors)


def test_the_configuration_doc_names_every_key() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = [key for key in sorted(_keys(Config)) if f"`{key}`" not in doc]
    assert missing == []


def test_env_file_fills_what_the_environment_lacks(tmp_path: Path) -> None:
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "secrets.env").write_text(
        "# made by make run\nHOTLINE_CRM_TOKEN=from-the-file-0123456789\nHOTLINE_OTHER='quoted value'\n",
        encoding="utf-8",
    )
    path = tmp_path / "hotline.yaml"
    path.write_text("env_file: var/secrets.env\napi:\n  tokens: ['${HOTLINE_CRM_TOKEN}']\n", encoding="utf-8")
    assert load_config(path, environ={}).api.tokens == ("from-the-file-0123456789",)
    environ = {"HOTLINE_CRM_TOKEN": "from-the-environment-012345"}
    assert load_config(path, environ=environ).api.tokens == ("from-the-environment-012345",)


def test_a_missing_env_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "hotline.yaml"
    path.write_text("env_file: nope.env\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert caught.value.errors == [
        f"{path}:1:11: env_file: cannot read {tmp_path / 'nope.env'}: No such file or directory; fix env_file, "
        "or create the file"
    ]


def test_routing_is_off_without_a_file_and_its_file_is_beside_the_config(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "routing: {}\n"), environ={}).routing.file is None
    assert load_config(None, environ={}).routing.file is None
    config = load_config(write(tmp_path, "routing:\n  file: conf/routing.yaml\n"), environ={})
    assert config.routing.file == tmp_path / "conf" / "routing.yaml"
    config = load_config(write(tmp_path, "routing: {file: /etc/hotline/routing.yaml}\n"), environ={})
    assert config.routing.file == Path("/etc/hotline/routing.yaml")
    path = write(tmp_path, "routing:\n  fle: routing.yaml\n")
    assert errors_of(path) == [f"{path}:2:3: routing.fle: unknown key 'fle'; did you mean 'file'?"]
