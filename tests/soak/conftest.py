"""Options of the randomised soak: `--soak-seed N` (default 20261130, fixed so CI is
reproducible; `random` draws one and prints it) and `--soak-minutes M` (default 0.5: the CI
length; pass more on demand, e.g. `--soak-minutes 30`)."""

from __future__ import annotations

import random

import pytest

DEFAULT_SEED = 20261130
DEFAULT_MINUTES = 0.5


def pytest_addoption(parser):
    group = parser.getgroup("soak")
    group.addoption("--soak-seed", default=str(DEFAULT_SEED),
                    help=f"seed of the randomised soak ({DEFAULT_SEED}; 'random' draws one)")
    group.addoption("--soak-minutes", type=float, default=DEFAULT_MINUTES,
                    help=f"wall time of the randomised soak in minutes ({DEFAULT_MINUTES:g})")


@pytest.fixture
def soak_seed(request) -> int:
    value = request.config.getoption("--soak-seed")
    return random.SystemRandom().randrange(1, 10**6) if value == "random" else int(value)


@pytest.fixture
def soak_minutes(request) -> float:
    return request.config.getoption("--soak-minutes")


def pytest_collection_modifyitems(config, items):
    # The suite-wide per-test timeout fits the CI length; a longer soak gets its own, with
    # room for the last cycle and the settling cycles.
    minutes = config.getoption("--soak-minutes")
    for item in items:
        if item.nodeid.startswith("tests/soak/") or "/soak/" in str(item.fspath):
            item.add_marker(pytest.mark.timeout(minutes * 60 + 420))
