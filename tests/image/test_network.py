"""What the host exposes: listening sockets and the firewall."""
import ipaddress

import pytest

pytestmark = [pytest.mark.gate, pytest.mark.fresh_boot]

PUBLIC_PORTS = {22, 80, 443}


def is_loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr.strip("[]").split("%")[0]).is_loopback
    except ValueError:
        return False


def test_only_ssh_http_https_listen_on_public_addresses(host):
    public = []
    for sock in host.socket.get_listening_sockets():
        if sock.startswith("unix://"):
            continue
        proto, rest = sock.split("://", 1)
        addr, port = rest.rsplit(":", 1)
        if is_loopback(addr):
            continue
        if proto == "udp" and port in ("68", "546", "323"):
            continue  # DHCP client, chrony's local command port on some systems
        if int(port) not in PUBLIC_PORTS:
            public.append(sock)
    assert not public, f"listening on public addresses beyond 22/80/443: {public}"


def test_ssh_and_http_listen(host, facts):
    assert host.socket("tcp://0.0.0.0:22").is_listening or host.socket("tcp://:::22").is_listening
    if facts.nginx:
        assert host.socket("tcp://0.0.0.0:80").is_listening


def nginx_rejects_handshakes(host) -> bool:
    """ssl_reject_handshake is nginx >= 1.19.4; Ubuntu 22.04's 1.18 opens 443 only with certbot."""
    return host.run("dpkg --compare-versions \"$(dpkg-query -W -f='${Version}' nginx)\" ge 1.19.4").rc == 0


def test_https_listens_and_refuses_handshakes_without_a_certificate(host, facts):
    if not facts.nginx or not nginx_rejects_handshakes(host):
        pytest.skip("no nginx, or an nginx without ssl_reject_handshake")
    assert host.socket("tcp://0.0.0.0:443").is_listening
    # Before certbot no name has a certificate: the handshake fails with an
    # alert (curl exit 35), never with a certificate that is not the site's.
    out = host.run("curl -sk -m 20 -o /dev/null https://127.0.0.1/")
    assert out.rc == 35, (out.rc, out.stderr)


def test_postgresql_and_redis_only_on_localhost(host, facts):
    for port in (5432, 6379):
        assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening, f"port {port} on all addresses"
        assert not host.socket(f"tcp://:::{port}").is_listening, f"port {port} on all IPv6 addresses"


def ruleset(host) -> str:
    with host.sudo():
        return host.check_output("nft list ruleset")


def test_firewall_drops_all_but_ssh_http_https(host):
    rules = ruleset(host)
    assert "hook input priority filter; policy drop;" in rules
    assert "tcp dport { 22, 80, 443 }" in rules
    # Nothing else is opened on TCP.
    dports = [line.strip() for line in rules.splitlines() if "tcp dport" in line and "f2b" not in line]
    assert all("{ 22, 80, 443 }" in line for line in dports), dports


def test_firewall_loaded_at_boot(host):
    assert host.service("nftables.service").is_enabled
    assert host.file("/etc/nftables.conf").contains("policy drop")
