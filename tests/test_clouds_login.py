"""clouds.wait_for_login: a cloud verification starts its suite only after a real SSH login.

A small SSH server (paramiko's server side, in a thread) plays the
instance: it accepts one public key, or none, or is not SSH at all.
"""
from __future__ import annotations

import socket
import threading
import time

import paramiko
import pytest

from builder import clouds
from builder.errors import BuildFailed


class Accepting(paramiko.ServerInterface):
    def __init__(self, allowed: paramiko.PKey | None):
        self.allowed = allowed
        self.refused = 0

    def get_allowed_auths(self, username):
        return "publickey"

    def check_auth_publickey(self, username, key):
        if self.allowed is not None and username == "admin" and key.asbytes() == self.allowed.asbytes():
            return paramiko.AUTH_SUCCESSFUL
        self.refused += 1
        return paramiko.AUTH_FAILED


class Server:
    """An SSH server on 127.0.0.1 that accepts `allowed` for user admin."""

    def __init__(self, allowed: paramiko.PKey | None, ssh: bool = True):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.iface = Accepting(allowed)
        self.ssh = ssh
        self.host_key = paramiko.Ed25519Key.from_private_key_file(str(clouds.temporary_key().private_file))
        self.stop = False
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            if not self.ssh:
                conn.sendall(b"HTTP/1.0 400 nope\r\n\r\n")
                conn.close()
                continue
            t = paramiko.Transport(conn)
            t.add_server_key(self.host_key)
            try:
                t.start_server(server=self.iface)
                t.accept(5)
            except Exception:  # noqa: BLE001 - the client gave up; next connection
                pass

    def close(self):
        self.stop = True
        self.sock.close()


@pytest.fixture
def key():
    k = clouds.temporary_key()
    yield k
    k.remove()


def test_returns_once_the_key_logs_in(key):
    srv = Server(paramiko.Ed25519Key.from_private_key_file(str(key.private_file)))
    try:
        assert clouds.wait_for_login("127.0.0.1", srv.port, "admin", key.private_file, timeout=30) < 30
        assert srv.iface.refused == 0
    finally:
        srv.close()


def test_an_instance_that_refuses_the_key_fails_after_few_tries(key):
    srv = Server(None)   # answers SSH, never accepts: the old instance at a reused address, or no key injected
    try:
        started = time.monotonic()
        with pytest.raises(BuildFailed, match=r"refused admin's login 2 times"):
            clouds.wait_for_login("127.0.0.1", srv.port, "admin", key.private_file, timeout=60, interval=0.1,
                                  refusals=2)
        assert srv.iface.refused == 2   # never more tries than fail2ban would forgive
        assert time.monotonic() - started < 30
    finally:
        srv.close()


def test_a_port_that_never_speaks_ssh_times_out_with_the_reason(key):
    srv = Server(None, ssh=False)
    try:
        with pytest.raises(BuildFailed, match=r"no SSH login as admin on 127.0.0.1:\d+ within 2s \(SSHException"):
            clouds.wait_for_login("127.0.0.1", srv.port, "admin", key.private_file, timeout=2, interval=0.2)
    finally:
        srv.close()
