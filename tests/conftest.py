"""Shared fixtures: one real local stack (Kafka + Triton, as processes) for the whole test session."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from twinwatch.stack import LocalStack, StackSettings, StackStatus


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: needs the real local stack (Kafka broker, Triton server)")
    config.addinivalue_line("markers", "stops_stack: stops the session's stack; run after every other test")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that stop the stack go last, so the one stack serves every other test of the session."""
    items.sort(key=lambda item: item.get_closest_marker("stops_stack") is not None)


@pytest.fixture(scope="session")
def java_and_maven() -> None:
    """Kafka runs on Java and is fetched by Maven (.ci/run installs both on a fresh machine)."""
    if shutil.which("java") is None or shutil.which("mvn") is None:
        pytest.fail("the local stack needs java (17+) and mvn on PATH: apt-get install openjdk-17-jre-headless maven")


@pytest.fixture(scope="session")
def stack(java_and_maven: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """Started once per session, stopped at the end; the first use ever fetches into ~/.cache/twinwatch.

    Its own services (windower, trainer, evaluator) run on topics under a prefix of their own, so the
    tests' services and records never meet them."""
    local = LocalStack(StackSettings(run_dir=tmp_path_factory.mktemp("stack"), topic_prefix="fixture-stack."))
    try:
        local.up()
        yield local
    finally:
        local.down()
    leftover = local.processes()
    assert not leftover, f"processes left after down(): {leftover}"


@pytest.fixture
def stack_status(stack: LocalStack) -> StackStatus:
    """The running stack's endpoints (up() is a no-op while it runs, and brings back a stopped one)."""
    return stack.up()
