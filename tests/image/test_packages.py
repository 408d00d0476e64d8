"""What is installed: the stack's packages, the pinned virtualenv, and nothing else of note."""

import batch
import pytest

pytestmark = [pytest.mark.gate, pytest.mark.fresh_boot]

ALWAYS = [
    "python3", "python3-venv",
    "openssh-server", "nftables", "fail2ban", "python3-systemd", "unattended-upgrades",
    "systemd-timesyncd", "logrotate", "git", "curl", "ca-certificates", "postgresql-client",
]


def expected_packages(facts) -> list[str]:
    pkgs = list(ALWAYS) + facts.packages
    if facts.local_db:
        pkgs.append("postgresql")
    if facts.redis:
        pkgs.append("redis-server")
    if facts.nginx:
        pkgs.append("nginx")
    if facts.certbot:
        pkgs += ["certbot", "python3-certbot-nginx"]
    return pkgs


def test_stack_packages_installed(host, facts):
    wanted = expected_packages(facts)
    installed = batch.installed_packages(host, wanted)
    missing = [p for p in wanted if p not in installed]
    assert not missing, f"packages not installed: {missing}"


# Beyond the named tools, what they pull in that no runtime package needs.
COMPILERS = ["gcc", "g++", "cpp", "make", "libc6-dev", "dpkg-dev"]


def test_build_tools_only_when_the_spec_keeps_them(host, facts):
    if not facts.toolchain:
        pytest.skip("built before djbake recorded its build tools (DJBAKE_TOOLCHAIN)")
    if facts.build_tools:
        installed = batch.installed_packages(host, facts.toolchain)
        missing = [p for p in facts.toolchain if p not in installed]
        assert not missing, f"stack.build_tools is on, but these are not installed: {missing}"
        assert host.run("command -v cc").rc == 0, "stack.build_tools is on, but there is no C compiler"
        return
    # What the spec's `packages:` asks for stays, whatever it is.
    unwanted = [p for p in facts.toolchain + COMPILERS if p not in facts.packages]
    present = sorted(batch.installed_packages(host, unwanted))
    assert not present, f"build-only packages in a lean image: {present}"
    dev = host.run("dpkg-query -W -f '${db:Status-Abbrev} ${Package}\\n' '*-dev' 2>/dev/null").stdout
    dev = [line.split()[1] for line in dev.splitlines() if line.startswith("ii") and line.split()[1] not in facts.packages]
    # A header package ships headers. Not every *-dev does: Debian 13's
    # postgresql-common depends on postgresql-common-dev (pg_buildext, Perl
    # scripts, no headers), so it is in every image with PostgreSQL.
    headers = [p for p in dev if host.run(f"dpkg -L {p} | grep -q '^/usr/include/'").rc == 0]
    assert not headers, f"header packages in a lean image: {headers}"
    if not any(p in facts.packages for p in ("gcc", "build-essential", "clang", "tcc")):
        assert host.run("command -v cc").rc != 0, "a C compiler is on PATH in a lean image"


def test_virtualenv_has_the_pinned_versions(host, facts):
    # The welcome release's virtualenv holds the image's pins (a deployed
    # release has the project's own). uv makes both, without pip; the venv's
    # own Python reads them, so this check does not lean on uv (test_uv_installs_releases does).
    listing = host.check_output(
        "/srv/app/releases/welcome/venv/bin/python -c "
        "'import importlib.metadata as m; [print(d.metadata[\"Name\"], d.version) for d in m.distributions()]'")
    have = {name.lower().replace("_", "-"): version
            for name, version in (line.split() for line in listing.splitlines() if line.strip())}
    want = {
        "django": facts.get("DJANGO_VERSION"),
        "gunicorn": facts.get("GUNICORN_VERSION"),
        "psycopg": facts.get("PSYCOPG_VERSION"),
    }
    for name, version in want.items():
        if version:
            assert have.get(name) == version, f"{name}: venv has {have.get(name)}, image was built for {version}"
    assert "psycopg-binary" in have, "psycopg[binary] missing: the app could not talk to PostgreSQL"


def test_virtualenv_imports_django_and_psycopg(host):
    host.check_output("/srv/app/venv/bin/python -c 'import django, gunicorn, psycopg'")


def test_uv_installs_releases(host, facts):
    out = host.check_output("uv --version")
    if facts.get("UV_VERSION"):
        assert out.split()[1] == facts.get("UV_VERSION"), out
    # The pins a project that names no Django/gunicorn gets without an index.
    wheels = host.file("/usr/local/share/djbake/wheels").listdir()
    assert any(w.lower().startswith("django-") for w in wheels), wheels


# What dpkg must be excluding (scripts/files/dpkg/01-djbake-nodoc; the bases built here have it from
# their first package on). Written out here, not read from that file: the check is of the image.
NODOC_RULES = [
    "path-exclude /usr/share/doc/*", "path-include /usr/share/doc/*/copyright",
    "path-exclude /usr/share/man/*", "path-exclude /usr/share/info/*",
    "path-exclude /usr/share/locale/*", "path-include /usr/share/locale/locale.alias",
]
# Licence files every image has (base.sh installs these): the exclusion must leave them.
SOME_COPYRIGHTS = ["ca-certificates", "git", "curl", "logrotate"]


def dpkg_config_lines(host) -> set[str]:
    """Every option line dpkg reads (dpkg.cfg, dpkg.cfg.d/*), as `option value` (`=` or space alike)."""
    text = host.run("cat /etc/dpkg/dpkg.cfg /etc/dpkg/dpkg.cfg.d/* 2>/dev/null").stdout
    lines = (line.strip() for line in text.splitlines())
    return {" ".join(line.replace("=", " ", 1).split()) for line in lines if line and not line.startswith("#")}


def test_no_documentation_installed(host):
    assert host.file("/etc/dpkg/dpkg.cfg.d/01-djbake-nodoc").exists
    missing = [r for r in NODOC_RULES if r not in dpkg_config_lines(host)]
    assert not missing, f"dpkg does not read these exclusions (any later install would bring them): {missing}"
    man = host.run("find /usr/share/man /usr/share/info -type f | head -5").stdout.split()
    docs = host.run("find /usr/share/doc -type f ! -name copyright | head -5").stdout.split()
    assert not man, f"man or info pages present: {man}"
    assert not docs, f"docs present: {docs}"
    foreign = host.run("find /usr/share/locale -mindepth 1 -maxdepth 1 ! -name en ! -name 'en_*' "
                       "! -name locale.alias | head -5").stdout.split()
    assert not foreign, f"non-English translations present: {foreign}"


def test_licences_stay(host):
    """Every copyright file an installed package owns is on disk (Debian policy), docs excluded or not."""
    owned = host.run("dpkg-query -W -f='${binary:Package}\\n' | xargs dpkg-query -L 2>/dev/null "
                     "| grep -E '^/usr/share/doc/[^/]+/copyright$' | sort -u").stdout.split()
    assert len(owned) > 50, f"dpkg lists only {len(owned)} copyright files"
    for pkg in SOME_COPYRIGHTS:
        assert f"/usr/share/doc/{pkg}/copyright" in owned, pkg
    gone = host.run("for f in " + " ".join(owned) + "; do [ -e \"$f\" ] || echo \"$f\"; done").stdout.split()
    assert not gone, f"copyright files missing: {gone[:10]}"


def test_apt_retries_transient_errors(host):
    dump = host.check_output("apt-config dump Acquire::Retries")
    assert 'Acquire::Retries "5"' in dump
