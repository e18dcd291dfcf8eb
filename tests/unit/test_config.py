"""Settings: durations, URL precedence, redaction, validation."""

from __future__ import annotations

import pytest

from fleetscale.config import (
    DEFAULT_REDIS_URL,
    REDIS_URL_ENV,
    RedisSettings,
    WorkerSettings,
    parse_duration,
    redact_url,
    resolve_redis_url,
)
from fleetscale.errors import ConfigurationError
from fleetscale.store import connect, scrub_password


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("2s", 2.0),
        ("1m", 60.0),
        ("1h", 3600.0),
        ("1.5", 1.5),
        ("0", 0.0),
        (3, 3.0),
    ],
)
def test_durations_parse_to_seconds(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "fast", "-1s", "1d", "nan", "1 2"])
def test_bad_durations_are_refused_with_the_value_named(text: str) -> None:
    with pytest.raises(ConfigurationError, match="bad duration"):
        parse_duration(text)


def test_the_explicit_url_beats_the_environment_which_beats_the_default() -> None:
    env = {REDIS_URL_ENV: "redis://env:6379/1"}
    assert resolve_redis_url("redis://flag:6379/2", env) == "redis://flag:6379/2"
    assert resolve_redis_url(None, env) == "redis://env:6379/1"
    assert resolve_redis_url(None, {}) == DEFAULT_REDIS_URL


def test_passwords_are_redacted_from_urls() -> None:
    assert redact_url("redis://worker:s3cret@db:6380/0") == "redis://worker:***@db:6380/0"
    assert redact_url("rediss://:s3cret@db/0") == "rediss://:***@db/0"
    assert redact_url("redis://db:6379/0") == "redis://db:6379/0"


@pytest.mark.parametrize(
    "url",
    [
        "redis://worker:1234#s3cret@db:6380/0",
        "redis://worker:ab/s3cret@db:6380/0",
        "redis://worker:ab?s3cret@db:6380/0",
        "redis://worker:s3cret@db:notaport/0",
    ],
)
def test_a_password_with_unencoded_reserved_characters_is_refused_and_never_shown(
    url: str,
) -> None:
    with pytest.raises(ConfigurationError, match="percent-encode") as caught:
        RedisSettings(url=url).validate()
    assert "s3cret" not in str(caught.value) and "1234" not in str(caught.value)
    assert "s3cret" not in redact_url(url)


def test_a_query_with_an_at_sign_is_not_taken_for_a_password() -> None:
    url = "rediss://db:6380/0?ssl_ca_certs=/etc/a@b/ca.pem"
    assert redact_url(url) == url
    RedisSettings(url=url).validate()


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("socket_timeout=30", "socket_timeout"),
        ("socket_connect_timeout=0.1&retry_on_timeout=yes", "retry_on_timeout, socket_connect"),
        ("health_check_interval=0", "health_check_interval"),
        ("decode_responses=1", "decode_responses"),
        ("protocol=3", "protocol"),
    ],
)
def test_url_options_that_override_what_fleetscale_sets_are_refused_by_name(
    query: str, named: str
) -> None:
    # redis-py lets the URL's query override the client's arguments: a socket_timeout
    # there undoes the bounded timeouts, decode_responses changes every reply.
    with pytest.raises(ConfigurationError, match=f"remove {named}"):
        RedisSettings(url=f"redis://db:6379/0?{query}").validate()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://db:6379/0?ssl_cert_reqs=none", "need TLS; use rediss://"),
        ("rediss://db:6380/0?ssl_ca_cert=/ca.pem", "remove ssl_ca_cert"),  # a typo
    ],
)
def test_tls_options_need_tls_and_a_name_redis_py_knows(url: str, message: str) -> None:
    # Either would pass to redis-py and fail with a TypeError at the first command.
    with pytest.raises(ConfigurationError, match=message):
        RedisSettings(url=url).validate()


@pytest.mark.parametrize("path", ["/abc", "/1/2", "/-1", "/ 3", "/0/"])
def test_a_database_part_that_is_not_a_number_is_refused_not_read_as_another(path: str) -> None:
    # redis-py ignores a /DB it cannot parse (database 0) and strips inner slashes
    # (/1/2 is database 12).
    with pytest.raises(ConfigurationError, match="after the host comes /DB"):
        RedisSettings(url=f"redis://db:6379{path}").validate()


@pytest.mark.parametrize("path", ["", "/", "/0", "/15"])
def test_a_url_with_or_without_a_database_number_is_accepted(path: str) -> None:
    assert RedisSettings(url=f"redis://db:6379{path}").validate()


def test_url_options_that_change_no_guarantee_are_kept() -> None:
    url = "rediss://db:6380/0?db=2&client_name=w&max_connections=8&ssl_cert_reqs=required"
    assert RedisSettings(url=url).validate().url == url


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("db=abc", "'db'"),
        ("max_connections=zero", "'max_connections'"),
        ("max_connections=-1", "max_connections"),
        ("socket_read_size=1.5", "'socket_read_size'"),
    ],
)
def test_a_url_option_with_a_bad_value_is_refused_when_connecting_without_the_password(
    query: str, named: str
) -> None:
    # redis-py raises a plain ValueError for these; connect() does no I/O.
    url = f"redis://worker:s3cret@db:6379/0?{query}"
    with pytest.raises(ConfigurationError, match=named) as caught:
        connect(RedisSettings(url=url))
    message = str(caught.value)
    assert f"bad Redis URL 'redis://worker:***@db:6379/0?{query}'" in message
    assert "s3cret" not in message and "\n" not in message


@pytest.mark.parametrize("name", ["password", "ssl_password"])
def test_a_password_in_the_query_is_redacted(name: str) -> None:
    redacted = redact_url(f"rediss://db:6380/0?db=1&{name}=s3cret&client_name=w")
    assert redacted == f"rediss://db:6380/0?db=1&{name}=***&client_name=w"


def test_a_password_in_the_query_is_refused_pointing_to_the_user_part() -> None:
    with pytest.raises(ConfigurationError, match="USER:PASSWORD@HOST") as caught:
        RedisSettings(url="redis://db:6379/0?password=s3cret").validate()
    assert "s3cret" not in str(caught.value)


def test_a_non_redis_url_is_refused_without_showing_its_password() -> None:
    with pytest.raises(ConfigurationError) as caught:
        RedisSettings(url="http://u:s3cret@db/").validate()
    assert "s3cret" not in str(caught.value)


def test_lease_renewal_must_be_shorter_than_min_idle() -> None:
    with pytest.raises(ConfigurationError, match="lease_renew_s"):
        WorkerSettings(min_idle_s=3, lease_renew_s=3).validate()
    assert WorkerSettings(min_idle_s=3).renew_every_s == pytest.approx(1.0)


def test_the_default_timeouts_bound_a_failed_command_to_under_five_seconds() -> None:
    # With Redis down, a producer's submit must fail within 5 s: every attempt can
    # spend at most the connect timeout, plus the capped backoff between attempts.
    s = RedisSettings()
    worst_s = (s.retries + 1) * max(
        s.connect_timeout_s, s.socket_timeout_s
    ) + s.retries * s.retry_backoff_cap_s
    assert worst_s < 5.0


@pytest.mark.parametrize(
    ("text", "shown"),
    [("WRONGPASS invalid username-password pair", "WRONGPASS invalid username-password pair"),
     ("cannot reach redis://u:p@db:6379/0", "cannot reach redis://u:***@db:6379/0"),
     ("password p refused", "password *** refused")],
)  # fmt: skip
def test_a_short_password_is_masked_where_it_stands_alone_not_inside_words(
    text: str, shown: str
) -> None:
    assert scrub_password(text, "redis://u:p@db:6379/0") == shown


def test_a_password_is_masked_wherever_it_stands_alone() -> None:
    said = "AUTH s3cr!t failed; s3cr!t again"
    assert scrub_password(said, "redis://u:s3cr!t@db:6379/0") == "AUTH *** failed; *** again"


def test_a_percent_encoded_password_is_masked_as_written_and_as_sent() -> None:
    said = "AUTH p@ss! failed for redis://u:p%40ss%21@db"
    assert scrub_password(said, "redis://u:p%40ss%21@db:6379/0") == (
        "AUTH *** failed for redis://u:***@db"
    )
