"""Robustness suite: each test proves a limit holds, with the measured figure in its assertion.

Run with `-s` to see the figures printed by each test (they are in the assertion messages too).
"""

import pytest

from robust_util import raise_nofile_limit


@pytest.fixture(autouse=True, scope="session")
def _nofile_limit():
    raise_nofile_limit()

