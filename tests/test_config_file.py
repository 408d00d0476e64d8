"""djbake.toml (builder/config_file.py): the catalog a team sets once, and the file as untrusted input."""
from __future__ import annotations

import pytest

from builder import cli, config_file, paths
from builder.catalog import store as catalog


@pytest.fixture
def toml(tmp_path, monkeypatch):
    """A checkout's djbake.toml in tmp_path (and no user file), DJBAKE_CATALOG unset."""
    monkeypatch.delenv("DJBAKE_CATALOG", raising=False)
    path = tmp_path / "djbake.toml"
    monkeypatch.setattr(paths, "config_files", lambda: [path, tmp_path / "user" / "djbake.toml"])
    return path


def test_no_file_is_the_default(toml):
    assert config_file.catalog_location() == paths.catalog_location()


def test_the_file_names_the_catalog_and_the_variable_still_wins(toml, tmp_path, monkeypatch, catalog_at, capsys):
    where = catalog_at("team")
    toml.write_text(f'# the team\'s catalog\ncatalog = "{where}"\n')
    assert config_file.catalog_location() == where
    catalog.Catalog(where).add([catalog.Entry("b1", "django-web", "1", "qemu", "local", "/i/b1.qcow2", verified=True)])
    assert cli.main(["images"]) == 0
    assert "/i/b1.qcow2" in capsys.readouterr().out   # `djbake images` read the team's catalog
    monkeypatch.setenv("DJBAKE_CATALOG", str(tmp_path / "mine.sqlite"))
    assert config_file.catalog_location() == str(tmp_path / "mine.sqlite")


def test_a_relative_file_is_relative_to_the_toml(toml, tmp_path):
    toml.write_text('catalog = "shared/catalog.sqlite"\n')
    assert config_file.catalog_location() == str(tmp_path / "shared" / "catalog.sqlite")


def test_the_users_file_counts_when_the_checkout_has_none(toml, tmp_path):
    user = tmp_path / "user" / "djbake.toml"
    user.parent.mkdir()
    user.write_text('catalog = "postgresql://djbake@db.example.com/djbake"\n')
    assert config_file.catalog_location() == "postgresql://djbake@db.example.com/djbake"


@pytest.mark.parametrize("text,message", [
    ('catalog = "postgresql://djbake:s3cret@db.example.com/djbake"\n', ":1: catalog: the URL holds a password"),
    ('# comment\n\ncatlog = "x.sqlite"\n', ":3: catlog: unknown setting"),
    ('catalog = 7\n', ":1: catalog: must be a non-empty string"),
    ('catalog = ""\n', ":1: catalog: must be a non-empty string"),
    ('\ncatalog = "x\n', ":2: not TOML"),
])
def test_bad_file_is_one_line_naming_file_line_and_key(toml, capsys, text, message):
    toml.write_text(text)
    assert cli.main(["images"]) == 2
    err = capsys.readouterr().err
    assert f"{toml}{message}" in err and "Traceback" not in err and "s3cret" not in err
    assert len(err.strip().splitlines()) == 1
