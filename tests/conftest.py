"""Shared fixtures: the catalog backends every catalog test runs against, and the docker engine and
the default docker image every docker module uses (built once per session: tests/docker_build.py)."""
from __future__ import annotations

import pytest

from tests import docker_build
from tests.pg_cluster import Cluster


@pytest.fixture(scope="session")
def pg_cluster():
    """One real PostgreSQL server for the session (tests/pg_cluster.py)."""
    cluster = Cluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def engine():
    """The local docker engine, started if it is not running (skips without docker.io)."""
    return docker_build.engine()


@pytest.fixture(scope="session")
def built_image(engine, tmp_path_factory):
    """(the `djbake image -p docker` run, its build directory) for the default spec: one build per session."""
    return docker_build.build_default(tmp_path_factory.mktemp("docker-build"))


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_at(request, tmp_path):
    """A factory of fresh, empty catalog locations on the backend of this run: catalog_at("name") gives a
    SQLite file in tmp_path, or the URL of a new database on the session's PostgreSQL server."""
    if request.param == "sqlite":
        return lambda name="catalog": str(tmp_path / f"{name}.sqlite")
    cluster = request.getfixturevalue("pg_cluster")
    return lambda name="catalog": cluster.url(cluster.new_database())
