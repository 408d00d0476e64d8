"""A testinfra backend for the image suite over SSH: every command through one root process.

testinfra's paramiko backend with --sudo opens an SSH channel and starts
`sudo /bin/sh -c CMD` for each command. Under software emulation that is
about a second per command (a channel, sudo's PAM and plugins, a shell), and
the suite runs several per check: the in-build gate took 12 minutes of a CI
run's build (2026-12-01). This backend starts `sudo -n python3` once per
connection, on one channel, and sends it the commands; it runs each with
`/bin/sh -c` as root, as `sudo /bin/sh -c` would, and sends back the exit
status and both outputs. Used when the suite's SSH user is not root
(builder/bake/gate.py `Target.hosts_arg`); tests/image/conftest.py registers it
as the `djbake-root` connection.

What a command sees is what it saw under sudo: root, sudo's environment,
the SSH user's working directory, stdin from /dev/null, the SSH session's
cgroup. A command wrapped by testinfra's `host.sudo(user)` runs through
`sudo -u user` from root. If the server or its channel dies (a check restarted
sshd's session, the VM rebooted), the next command starts a new one, once.
"""
from __future__ import annotations

import base64
import json
import shlex
from typing import Any

import paramiko
from testinfra.backend import BACKENDS, base
from testinfra.backend.paramiko import ParamikoBackend

from builder.bake.gate import ROOT_SHELL

NAME = ROOT_SHELL

# Runs in the guest as root: one JSON request per line in, one per line out.
SERVER = r"""
import base64, json, subprocess, sys
for line in sys.stdin:
    cmd = json.loads(line)["cmd"]
    p = subprocess.run(["/bin/sh", "-c", cmd], stdin=subprocess.DEVNULL, capture_output=True)
    sys.stdout.write(json.dumps({"rc": p.returncode, "out": base64.b64encode(p.stdout).decode(),
                                 "err": base64.b64encode(p.stderr).decode()}) + "\n")
    sys.stdout.flush()
"""


class ServerGone(Exception):
    pass


class RootShellBackend(ParamikoBackend):
    NAME = NAME

    def __init__(self, hostspec: str, *args: Any, **kwargs: Any):
        super().__init__(hostspec, *args, **kwargs)
        self._chan: paramiko.Channel | None = None
        self._out = None

    def _server(self):
        if self._chan is None or self._chan.closed or self._chan.exit_status_ready():
            transport = self.client.get_transport()
            assert transport is not None
            chan = transport.open_session()
            code = base64.b64encode(SERVER.encode()).decode()
            chan.exec_command(f"sudo -n /usr/bin/python3 -u -c "
                              f"{shlex.quote(f'import base64; exec(base64.b64decode({code!r}))')}")
            self._chan, self._out = chan, chan.makefile("rb")
        return self._chan, self._out

    def _ask(self, command: str) -> tuple[int, bytes, bytes]:
        chan, out = self._server()
        try:
            chan.sendall((json.dumps({"cmd": command}) + "\n").encode())
            line = out.readline()
        except (OSError, EOFError, paramiko.SSHException) as e:
            raise ServerGone(str(e)) from e
        if not line:
            err = chan.recv_stderr(65536).decode(errors="replace").strip() if chan.recv_stderr_ready() else ""
            self._chan = None
            raise ServerGone(err or "the root process ended")
        answer = json.loads(line)
        return answer["rc"], base64.b64decode(answer["out"]), base64.b64decode(answer["err"])

    def run(self, command: str, *args: str, **kwargs: Any) -> base.CommandResult:
        # self.sudo is False (the server is root already) unless a check asked for another user.
        command = self.get_command(command, *args)
        try:
            rc, stdout, stderr = self._ask(command)
        except ServerGone:
            transport = self.client.get_transport()
            if transport is None or not transport.is_active():
                del self.client   # ParamikoBackend.client is a cached property: reconnect
            self._chan = None
            rc, stdout, stderr = self._ask(command)
        return self.result(rc, self.encode(command), stdout, stderr)


# testinfra picks a backend by the host spec's scheme from this table.
if NAME not in BACKENDS:
    BACKENDS[NAME] = f"{__name__}.RootShellBackend"
