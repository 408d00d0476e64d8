"""Shared fixtures: the catalog backends every catalog test runs against."""
from __future__ import annotations

import pytest

from tests.pg_cluster import Cluster


@pytest.fixture(scope="session")
def pg_cluster():
    """One real PostgreSQL server for the session (tests/pg_cluster.py)."""
    cluster = Cluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_at(request, tmp_path):
    """A factory of fresh, empty catalog locations on the backend of this run: catalog_at("name") gives a
    SQLite file in tmp_path, or the URL of a new database on the session's PostgreSQL server."""
    if request.param == "sqlite":
        return lambda name="catalog": str(tmp_path / f"{name}.sqlite")
    cluster = request.getfixturevalue("pg_cluster")
    return lambda name="catalog": cluster.url(cluster.new_database())
