"""HTTP through nginx: Django answers, nginx serves files, unknown hosts get nothing."""
import json

import pytest

pytestmark = [pytest.mark.gate, pytest.mark.fresh_boot]


@pytest.fixture(autouse=True)
def _needs_nginx(facts):
    if not facts.nginx:
        pytest.skip("the spec has no nginx")


def test_nginx_config_valid(host):
    with host.sudo():
        out = host.run("nginx -t")
    assert out.rc == 0, out.stderr
    assert "syntax is ok" in out.stderr and "test is successful" in out.stderr


@pytest.fixture
def welcome(facts):
    if facts.baked_app:
        pytest.skip("a project baked in by the spec's app: answers, with its own URLs, not the welcome project")


@pytest.mark.per_vm
def test_django_answers_on_localhost(http, facts):
    r = http.get("/")
    assert r.status == 200, r
    if not facts.baked_app:
        assert "text/html" in r.header("content-type")


def test_health_url(http, facts, welcome):
    r = http.get("/healthz")
    assert r.status == 200, r
    data = json.loads(r.body)
    assert data["app"] == "ok"
    if facts.local_db:
        assert data.get("database") == "ok", data


def test_debug_off(http):
    """A page that does not exist gets Django's plain 404, not DEBUG's page listing the URLconf."""
    r = http.get("/djbake-no-such-page/")
    assert r.status == 404, r
    assert "DEBUG = True" not in r.body and "URLconf" not in r.body, "DEBUG is on: " + r.body[:300]


def global_addresses(host) -> list[str]:
    out = host.check_output("ip -o addr show scope global")
    return [line.split()[3].split("/")[0] for line in out.splitlines()]


@pytest.mark.per_vm
def test_django_answers_on_the_vm_address(host, http):
    addrs = [a for a in global_addresses(host) if ":" not in a]
    if not addrs:
        pytest.skip("no global IPv4 address")
    r = http.get("/", host_header=addrs[0], address=addrs[0])
    assert r.status == 200, f"http://{addrs[0]}/ -> {r}"


def test_static_file_served_by_nginx(host, http, facts):
    if facts.baked_app:
        # The project's own collected files: any one of them, byte for byte.
        with host.sudo():
            rel = host.run("cd /srv/app/static && find . -type f -name '*.css' -print -quit").stdout.strip()[2:]
            expected = host.file(f"/srv/app/static/{rel}").content_string if rel else ""
        assert rel, "the baked project collected no .css file into /srv/app/static"
        r = http.get(f"/static/{rel}")
        assert r.status == 200 and r.body == expected, r
    else:
        r = http.get("/static/djbake/welcome.css")
        assert r.status == 200, r
        assert "djbake-welcome-static" in r.body
    assert r.header("content-type").startswith("text/css")
    # Only nginx's /static/ location adds these; Django (DEBUG off) serves no files.
    assert "public" in r.header("cache-control") and r.header("expires"), r.headers


def test_unknown_host_gets_444(http):
    r = http.get("/", host_header="not-this-server.invalid")
    assert r.status == 0 and r.curl_rc == 52, f"expected an empty reply (444), got {r}"


def test_request_without_host_gets_444(http):
    r = http.get("/", host_header=None, http10=True)
    assert r.status == 0 and r.curl_rc == 52, f"expected an empty reply (444), got {r}"


def test_media_served_as_files_never_executed(host, http):
    path = "/srv/app/media/djbake-probe.php"
    with host.sudo():
        host.check_output(f"printf '<?php echo 1; ?>' > {path} && chown django:django {path}")
    try:
        r = http.get("/media/djbake-probe.php")
    finally:
        with host.sudo():
            host.run(f"rm -f {path}")
    assert r.status == 200, r
    assert r.body == "<?php echo 1; ?>"
    assert r.header("content-type").startswith("text/plain"), r.header("content-type")
    assert "sandbox" in r.header("content-security-policy")
    assert r.header("x-content-type-options") == "nosniff"
