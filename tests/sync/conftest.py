"""Fixtures for sync tests: a central server process per module, fresh posts per test."""

from __future__ import annotations

import itertools

import pytest

from tests.sync.harness import Central, Field

_posts = itertools.count(1)


@pytest.fixture(scope="module")
def central(tmp_path_factory):
    c = Central(tmp_path_factory.mktemp("central")).start()
    yield c
    c.stop()


@pytest.fixture
def make_field(tmp_path, central):
    """`make_field()`: a new post's field database, enrolled at the module's central server."""
    made = []

    def make(post: str | None = None, enrol: bool = True) -> Field:
        post = post or f"P{next(_posts):04d}"
        f = Field.create(tmp_path / post, post)
        if enrol:
            f.enrol(central)
        made.append(f)
        return f

    yield make
    for f in made:
        f.db.close()
