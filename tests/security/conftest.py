"""Fixtures of the escape battery (the harness itself is in `_harness.py`)."""

from tests.security._harness import (  # noqa: F401 - fixtures are found by name
    abstract_listener,
    canaries,
    host_secret_in_environment,
    pytest_collection_modifyitems,
    tcp_listener,
    udp_listener,
    unix_listener,
)
