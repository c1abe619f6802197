"""Shared pytest configuration for verb's tests."""

import os

import pytest


def pytest_report_header(config):
    # Which verb is under test: the editable build in development, the installed wheel in
    # scripts/check-wheel.sh (which checks this line to make sure the wheel was what got tested).
    try:
        import verb
    except ImportError as exc:
        return "verb: not importable ({})".format(exc)
    return "verb {} imported from: {}".format(verb.__version__, os.path.dirname(verb.__file__))


def pytest_addoption(parser):
    parser.addoption(
        "--full", action="store_true", default=False,
        help="the long tier: all 517 Autobahn cases, longer fuzzing, larger capacity and churn "
             "(under 90 minutes; the default tier is what CI runs)")


@pytest.fixture(scope="session")
def full_tier(request) -> bool:
    """True when the long tier was asked for (`scripts/test.sh --full`)."""
    return bool(request.config.getoption("--full"))


@pytest.fixture
def redis_server(tmp_path):
    """A redis-server of our own on a free 127.0.0.1 port (tests/support/cluster.py), stopped after."""
    from support.cluster import RedisServer

    server = RedisServer(tmp_path / "redis")
    try:
        yield server.start()
    finally:
        server.stop()
