"""What the host exposes: listening sockets and the firewall."""
import contextlib
import ipaddress
import shlex
import socket
import time

import pytest

from builder.qemu import vm

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


# A listener on a port nothing uses, started in the guest by the check below: TCP connections and UDP
# datagrams it receives are written to PROBE_LOG with their source address.
PROBE_PORT = vm.PROBE_GUEST_PORT   # the port every djbake VM forwards to it
PROBE_LOG = "/run/djbake-firewall-probe.log"
PROBE = f"""
import select, socket
t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("0.0.0.0", {PROBE_PORT})); t.listen(8)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", {PROBE_PORT}))
while True:
    for s in select.select([t, u], [], [])[0]:
        if s is t:
            c, peer = t.accept(); c.close(); what = "tcp"
        else:
            _, peer = u.recvfrom(64); what = "udp"
        with open("{PROBE_LOG}", "a") as f:
            f.write(what + " " + peer[0] + "\\n")
"""


def outside_address(host) -> str | None:
    """An address of the host the runner reaches directly, not through a forwarded port (None)."""
    if host.backend.NAME == "docker":
        addrs = [line.split()[3].split("/")[0] for line in host.check_output("ip -o -4 addr show scope global").splitlines()]
        return addrs[0] if addrs else None
    spec = getattr(host.backend, "host", None)
    name = getattr(spec, "name", None)
    if not name or name == "localhost" or is_loopback(name):
        return None
    return name


def reachable(addr: str, port: int, timeout: float = 3) -> bool:
    try:
        with socket.create_connection((addr, port), timeout=timeout):
            return True
    except OSError:
        return False


def answers(port: int, hello: bytes, expect: bytes, timeout: float = 20) -> bool:
    """A forwarded port: slirp accepts the connection on the runner's side whatever the guest does,
    so only the guest's own first bytes (SSH's banner, an HTTP status line) show it answered."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as c:
            if hello:
                c.sendall(hello)
            return c.recv(len(expect)).startswith(expect)
    except OSError:
        return False


def knock_forwarded(port: int) -> None:
    """A TCP connection and UDP datagrams to the guest's probe port through its forward. Whether
    they arrived only the guest's probe log tells (source 10.0.2.2, slirp's gateway)."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=3) as c:
        c.settimeout(5)
        with contextlib.suppress(OSError):
            c.recv(1)   # the probe closes at once if the guest let it in; slirp gives up otherwise
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        for _ in range(3):
            u.sendto(b"out", ("127.0.0.1", port))


def on_a_vm(host) -> bool:
    return host.run("systemd-detect-virt --vm --quiet").rc == 0


def test_firewall_refuses_a_spare_port_from_outside(host, facts, forwards, request):
    """Behaviour, not ruleset text: from the runner, a listener on a spare port (TCP and UDP) gets
    nothing while SSH (and HTTP, HTTPS with nginx) answer. A QEMU VM is reached through its
    forwarded ports (the verifier forwards one to PROBE_PORT, TCP and UDP); they enter the guest on
    its NIC, so nftables' input chain applies as to any outside address."""
    addr = outside_address(host)
    if addr is None and PROBE_PORT not in forwards:
        if not on_a_vm(host):
            pytest.skip("the runner reaches this container only through a forwarded port: "
                        "no other port of it can be reached from here")
        if "fresh_boot" not in request.config.option.markexpr:
            # QEMU's in-build gate: Packer forwards SSH only to its build VM (the verifier's VMs forward
            # the probe port, and there this check must run).
            pytest.skip("the in-build gate's VM is Packer's: it forwards only SSH; the fresh boots probe the firewall")
        pytest.fail("a VM reached through forwarded ports whose mapping the runner was not given "
                    f"({vm.FORWARDS_ENV}, builder/qemu/vm.py): the firewall cannot be probed")
    unit = "djbake-firewall-probe"
    with host.sudo():
        host.run(f"systemctl stop {unit}; rm -f {PROBE_LOG}")
        host.check_output(f"systemd-run --unit={unit} --collect python3 -c {shlex.quote(PROBE)}")
    try:
        with host.sudo():
            listening = host.run(f"for i in $(seq 30); do ss -Htln 'sport = :{PROBE_PORT}' | grep -q . && exit 0; "
                                 "sleep 1; done; exit 1")
            assert listening.rc == 0, f"the probe listener did not start: {host.run(f'journalctl -u {unit} -o cat').stdout}"
            # The listener works: the guest reaches it itself (loopback is accepted).
            host.check_output(f"python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
                              f".sendto(b\"in\", (\"127.0.0.1\", {PROBE_PORT}))'")
        if addr is None:   # QEMU user networking: SSH and HTTP through their forwards (no 443 forward)
            addr = "127.0.0.1 (forwarded)"
            closed = [p for p, ok in ((22, answers(forwards[22], b"", b"SSH-")),
                                      (80, not facts.nginx or answers(forwards[80], b"HEAD / HTTP/1.0\r\n"
                                                                      b"Host: localhost\r\n\r\n", b"HTTP/")))
                      if not ok]
            assert not closed, f"{addr}: ports {closed} do not answer from the runner"
            knock_forwarded(forwards[PROBE_PORT])
            tcp_open = None   # judged by the probe's log below: slirp connects whatever the guest does
        else:
            public = [22] + ([80, 443] if facts.nginx and nginx_rejects_handshakes(host) else [80] if facts.nginx else [])
            closed = [p for p in public if not reachable(addr, p)]
            assert not closed, f"{addr}: ports {closed} do not answer from the runner"
            tcp_open = reachable(addr, PROBE_PORT)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                for _ in range(3):
                    u.sendto(b"out", (addr, PROBE_PORT))
        # The guest's own datagram shows the probe logs; then 3 s more for what came from outside
        # (polled: under emulation on a busy host the probe can take seconds to write its log).
        with host.sudo():
            host.run(f"for i in $(seq 30); do grep -q '^udp 127.0.0.1$' {PROBE_LOG} 2>/dev/null && exit 0; "
                     "sleep 1; done; exit 1")
        time.sleep(3)
        with host.sudo():
            seen = host.run(f"cat {PROBE_LOG}").stdout.split("\n")
    finally:
        with host.sudo():
            host.run(f"systemctl stop {unit}; rm -f {PROBE_LOG}")
    assert "udp 127.0.0.1" in seen, f"the probe saw not even the guest's own datagram: {seen}"
    outside = sorted({line for line in seen if line and not line.endswith(" 127.0.0.1")})
    assert not tcp_open and not outside, \
        f"{addr}:{PROBE_PORT} reachable from the runner ({'' if tcp_open is None else f'tcp connected: {tcp_open}; '}" \
        f"the probe saw {outside})"
