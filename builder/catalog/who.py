"""Who is acting, for the catalog's audit fields (channel history, revocations, who built an image).

A CI run is named by its URL (GitHub Actions, GitLab CI, Jenkins set what
is needed), anyone else by user@host. DJBAKE_ACTOR overrides both, for a
wrapper that knows better (a chat-ops bot acting for a person).
"""
from __future__ import annotations

import getpass
import os
import socket

MAX = 512


def who() -> str:
    env = os.environ
    if env.get("DJBAKE_ACTOR"):
        return env["DJBAKE_ACTOR"][:MAX]
    if env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL") or "https://github.com"
        return f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"[:MAX]
    for key in ("CI_JOB_URL", "BUILD_URL"):  # GitLab CI, Jenkins
        if env.get(key):
            return env[key][:MAX]
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"[:MAX]
