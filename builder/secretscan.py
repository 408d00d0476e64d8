"""Find secrets where a build may leave them: rendered templates, packer.log,
the catalog, and the image's own filesystem (a mounted tree or a live host).

What counts (each finding names file, line and kind, never the whole secret):

- private keys (PEM, OpenSSH, PuTTY), AWS access key ids and secret keys,
  cloud tokens (DigitalOcean `dop_v1_...`, Linode, Hetzner, GitHub, Google),
  known credential variables (LINODE_TOKEN=..., OS_PASSWORD=...) set to a
  literal value, and the exact values of the credentials in this
  environment (`env_needles()`);
- `password=`, `SECRET_KEY=`, `client_secret: ...` assignments with a literal
  value, and `scheme://user:password@` URLs;
- in an image: what a build adds to reach a TLS-intercepting proxy or a
  mirror (files in /usr/local/share/ca-certificates, apt/pip proxy or CA
  settings, *_proxy / *_CA_BUNDLE variables), and the build CA's own
  certificate body where given (`ca_needles()`).

Known-safe things are allowed explicitly and narrowly: references rather than
values (`${var.x}`, `${env("X")}`, `$X`, `{{ .X }}`, `os.environ[...]`),
public keys, empty values, and the placeholder values of our docs and of
AWS's documentation.
"""
from __future__ import annotations

import bisect
import os
import re
import shlex
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from builder.providers import PROVIDERS

MAX_FILE_BYTES = 8 * 1024 * 1024

# -- what is allowed --------------------------------------------------------

# AWS's documented example credentials, and the placeholders our docs show.
EXAMPLE_VALUES = frozenset({
    "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "...", "…", "placeholder", "[redacted]", "redacted", "changeme-in-production",
})
PLAIN_WORDS = frozenset({
    "none", "null", "nil", "true", "false", "yes", "no", "on", "off", "~", "required", "optional",
    "sensitive", "secret", "password", "passwd", "pass", "string", "str", "bool", "int", "env", "file", "prompt", "ask",
})
# A value that refers to one kept elsewhere: Packer/HCL, shell, Jinja/Go templates,
# Python lookups, %(name)s interpolation, <angle-bracket> placeholders.
REFERENCE = re.compile(
    r"""^(?:\$\{.*\}|\$\(.*\)|\$[A-Za-z_][A-Za-z0-9_]*|\{\{.*\}\}|%\(\w+\)s|<[^<>]+>|\*+|x{3,}|X{3,}|
        os\.environ\b.*|os\.getenv\b.*|env\(.*\)|getenv\(.*\))$""", re.X)
PUBLIC_KEY = re.compile(r"^(?:ssh-(?:rsa|ed25519|dss)|ecdsa-sha2-\S+|sk-ssh-\S+) AAAA")


LABELLED_DIGEST = re.compile(r"^(?:sha1|sha224|sha256|sha384|sha512|md5):[0-9a-f]{32,128}$")
HEX_DIGEST = re.compile(r"^[0-9a-f]{40}$|^[0-9a-f]{64}$|^[0-9a-f]{128}$")


def _is_literal(value: str, digests: bool = False) -> bool:
    """True when an assigned value is a literal secret, not a reference, a word, a path or a placeholder.

    A labelled digest (`sha256:...`) is never a secret; a bare hex digest only where the caller
    knows digests are stored (`digests`: the catalog's verification records hashes of secrets).
    """
    v = value.strip().strip("\"'").strip()
    if len(v) < 4 or v in EXAMPLE_VALUES or v.lower() in PLAIN_WORDS or LABELLED_DIGEST.match(v):
        return False
    if digests and HEX_DIGEST.match(v):
        return False
    if v[:1] in "$/" or v.startswith(("./", "~/")) or REFERENCE.match(v) or PUBLIC_KEY.match(v):
        return False
    return not ("${" in v or "{{" in v or "$(" in v)


# -- what is found ----------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    where: str
    line: int
    kind: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.where}:{self.line}: {self.kind}: {self.excerpt}"


def _redact(secret: str) -> str:
    s = secret.strip().strip("\"'")
    return f"{s[:4]}... ({len(s)} chars)" if len(s) > 8 else f"... ({len(s)} chars)"


@dataclass(frozen=True)
class Rule:
    kind: str
    pattern: re.Pattern
    group: int = 0          # the secret's group (redacted in the excerpt)
    literal: bool = False   # the group must be a literal value (_is_literal)
    generic: bool = False   # assignment-style: not run inside third-party code trees
    image: bool = False     # build leftovers that only matter inside an image


def _r(pattern: str, flags: int = 0) -> re.Pattern:
    return re.compile(pattern, flags)


CREDENTIAL_VARS = (
    "AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|LINODE_TOKEN|LINODE_CLI_TOKEN|DIGITALOCEAN_TOKEN|"
    "DIGITALOCEAN_ACCESS_TOKEN|DIGITALOCEAN_API_TOKEN|HCLOUD_TOKEN|OS_PASSWORD|OS_API_KEY|RAX_API_KEY|"
    "RACKSPACE_API_KEY|ARM_CLIENT_SECRET|AZURE_CLIENT_SECRET|GOOGLE_CREDENTIALS|DJBAKE_GATE_KEY"
)
# The value of an assignment: quoted, or one unquoted word.
VALUE = r"""("[^"\n]*"|'[^'\n]*'|<[^<>\n]*>|[^\s"',;#}\])]+)"""
# A name that *ends* in a secret word: password, DJANGO_DB_PASSWORD, SECRET_KEY, root_pass,
# client_secret, X_TOKEN -- but not password_encryption, password_file or server_tokens, and
# the words that are also common plain names (passwd, pass, secret, token) only with a prefix.
SECRET_NAMES = (r"(?:[\w.-]*[_.-])?(?:password|passphrase|secret_?key|api_?key|client_?secret|access_?token|"
                r"auth_?token|private_?token)|[\w.-]*[_.-](?:passwd|pass|secret|token)")
CODE_SUFFIXES = (".py", ".pyi", ".pl", ".pm", ".rb", ".js", ".ts", ".php", ".go", ".java", ".lua", ".tcl")

RULES: tuple[Rule, ...] = (
    Rule("private-key", _r(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|PuTTY-User-Key-File-\d")),
    Rule("aws-access-key", _r(r"\b((?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|AIPA)[0-9A-Z]{16})\b"), 1, literal=True),
    Rule("aws-secret-key", _r(r"(?i)(?:aws)?_?secret_?(?:access_?)?key[\"']?[ \t]*[:=][ \t]*[\"']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"),
         1, literal=True),
    Rule("digitalocean-token", _r(r"\b(do[opr]_v1_[a-f0-9]{64})\b"), 1),
    Rule("linode-token", _r(r"(?i)linode\w*(?:token|pat|key)[\"']?[ \t]*[:=][ \t]*[\"']?([a-f0-9]{64})\b"), 1),
    Rule("hetzner-token", _r(r"(?i)(?:hcloud|hetzner)\w*token[\"']?[ \t]*[:=][ \t]*[\"']?([A-Za-z0-9]{64})\b"), 1),
    Rule("github-token", _r(r"\b(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b"), 1),
    Rule("google-api-key", _r(r"\b(AIza[0-9A-Za-z_-]{35})\b"), 1),
    Rule("gcp-service-account", _r(r"\"type\"[ \t]*:[ \t]*\"service_account\"")),
    Rule("slack-token", _r(r"\b(xox[abprs]-[A-Za-z0-9-]{10,})\b"), 1),
    Rule("credential-variable", _r(rf"\b(?:export\s+)?(?:{CREDENTIAL_VARS})[\"']?[ \t]*[:=][ \t]*{VALUE}"), 1, literal=True),
    Rule("url-credentials", _r(r"\b[a-z][a-z0-9+.-]*://[^/\s:@\"']+:([^/\s@\"']+)@"), 1, literal=True, generic=True),
    Rule("secret-assignment", _r(rf"(?i)(?<![\w.-])({SECRET_NAMES})(?![\w.-])[\"']?[ \t]*(?::=|=|:)[ \t]*{VALUE}"), 2,
         literal=True, generic=True),
    # Build leftovers for a proxy/mirror: its CA, proxy settings, TLS switched off.
    Rule("build-proxy", _r(r"(?i)\bAcquire::(?:https?|ftp)::Proxy\b|"
                           r"(?<![\w-])(?:https?|ftp|all)_proxy[\"']?[ \t]*[:=][ \t]*[\"']?\S"), image=True),
    # The variables in upper case only: PostgreSQL's own `ssl_cert_file` names the server's certificate.
    Rule("build-ca", _r(r"(?i:\bAcquire::https?::(?:CaInfo|Verify-Peer|Verify-Host)\b)|"
                        r"(?<![\w-])(?:REQUESTS_CA_BUNDLE|SSL_CERT_FILE|SSL_CERT_DIR|CURL_CA_BUNDLE|PIP_CERT|"
                        r"NODE_EXTRA_CA_CERTS|GIT_SSL_CAINFO|PIP_TRUSTED_HOST|PIP_INDEX_URL|PIP_PROXY)[ \t]*=[ \t]*\S"),
         image=True),
)
# pip's config: `cert =`, `proxy =`, `trusted-host =`, `index-url =` in pip.conf/pip.ini.
PIP_CONF = re.compile(r"(?im)^\s*(cert|client-cert|proxy|trusted-host|index-url|extra-index-url)\s*=\s*\S")
PIP_CONF_NAMES = ("pip.conf", "pip.ini")


def _line_starts(text: str) -> list[int]:
    return [0] + [m.end() for m in re.finditer("\n", text)]


def scan_text(text: str, where: str, *, generic: bool = True, image: bool = False, code: bool = False,
              needles: dict[str, str] | None = None, first_line: int = 1, digests: bool = False) -> list[Finding]:
    """Findings in one text. `code`: unquoted right-hand sides are expressions (Python)."""
    starts = _line_starts(text)
    out: list[Finding] = []
    seen: set[tuple[int, str]] = set()

    def add(pos: int, kind: str, excerpt: str) -> None:
        line = bisect.bisect_right(starts, pos) - 1 + first_line
        if (line, kind) not in seen:
            seen.add((line, kind))
            out.append(Finding(where, line, kind, excerpt))

    for rule in RULES:
        if (rule.generic and not generic) or (rule.image and not image):
            continue
        for m in rule.pattern.finditer(text):
            secret = m.group(rule.group)
            if rule.literal and not _is_literal(secret, digests and rule.generic):
                continue
            if code and rule.generic and (secret[:1] not in "\"'" or re.search(r"\s", secret)):
                continue  # in code an unquoted right-hand side is an expression; a quoted one with spaces a message
            if rule.group:
                head = m.group(0)[: m.start(rule.group) - m.start(0)]
                excerpt = " ".join(f"{head} {_redact(secret)}".split())
            else:
                excerpt = " ".join(m.group(0)[:60].split())
            add(m.start(), rule.kind, excerpt)
    for label, value in (needles or {}).items():
        start = text.find(value)
        while start != -1:
            add(start, "known-secret", f"the value of {label}")
            start = text.find(value, start + 1)
    out.sort(key=lambda f: (f.line, f.kind))
    return out


# -- files and trees -------------------------------------------------------

# Third-party code ships words like password= by the thousand: there only the
# unmistakable patterns (keys, token formats, known values) are looked for.
CODE_DIRS = frozenset({"site-packages", "dist-packages", "node_modules", "doc", "man", "locale"})
SKIP_DIRS = frozenset({"__pycache__", ".git", ".hypothesis", ".pytest_cache"})


def _read_text(path: Path) -> str | None:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None  # binary
    return data.decode("utf-8", "replace")


def scan_file(path: Path, where: str | None = None, *, generic: bool = True, image: bool = False,
              needles: dict[str, str] | None = None) -> list[Finding]:
    path = Path(path)
    if path.suffix in (".sqlite", ".db", ".sqlite3") or _is_sqlite(path):
        return scan_catalog(path, needles=needles)
    text = _read_text(path)
    if text is None:
        return []
    where = where or str(path)
    found = scan_text(text, where, generic=generic, image=image, code=path.suffix in CODE_SUFFIXES,
                      needles=needles)
    if image and path.name in PIP_CONF_NAMES:
        starts = _line_starts(text)
        found += [Finding(where, bisect.bisect_right(starts, m.start()), "build-ca",
                          f"pip {m.group(1)} setting") for m in PIP_CONF.finditer(text)]
    return found


def _is_sqlite(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(16) == b"SQLite format 3\0"
    except OSError:
        return False


# The parts of an image's filesystem where a build leaves things; the rest is
# packaged software (checked by its package manager, not by us).
IMAGE_ROOTS = ("etc", "root", "home", "srv", "opt", "usr/local", "var/lib/cloud", "var/lib/djbake", "var/log",
               "var/tmp", "tmp", "var/backups", "var/spool/cron", "var/www", "usr/lib/systemd/system")
BUILD_CA_DIR = "usr/local/share/ca-certificates"


def looks_like_image(root: Path) -> bool:
    return (root / "etc").is_dir() and (root / "usr").is_dir()


def _walk(base: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            p = Path(dirpath, name)
            if p.is_file() and not p.is_symlink():
                yield p


def scan_tree(root: Path, *, image: bool | None = None, needles: dict[str, str] | None = None,
              allow: Iterable[str] = ()) -> list[Finding]:
    """Every text file below root. An image's root (etc/ and usr/ below it) is scanned
    in IMAGE_ROOTS and also for build leftovers; `allow` lists paths (relative to root,
    prefixes) expected to hold secrets, e.g. per-VM host keys after a boot."""
    root = Path(root)
    if root.is_file():
        return scan_file(root, needles=needles)
    image = looks_like_image(root) if image is None else image
    bases = [root / r for r in IMAGE_ROOTS] if image else [root]
    allowed = tuple(a.strip("/") for a in allow)
    found: list[Finding] = []
    for base in bases:
        if not base.is_dir() or base.is_symlink():
            continue
        for path in _walk(base):
            rel = path.relative_to(root).as_posix()
            if allowed and rel.startswith(allowed):
                continue
            where = f"/{rel}" if image else str(path)
            if image and rel.startswith(BUILD_CA_DIR + "/"):
                found.append(Finding(where, 1, "build-ca", "a CA added to the image's trust store"))
            parts = path.relative_to(root).parts if image else path.parts
            generic = not (CODE_DIRS & set(parts))
            found += scan_file(path, where, generic=generic, image=image, needles=needles)
    return found


# -- the catalog -------------------------------------------------------------

def scan_catalog(path: Path, needles: dict[str, str] | None = None) -> list[Finding]:
    """Every text value of every table; then the raw file (and its WAL), where deleted rows linger."""
    path = Path(path)
    found: list[Finding] = []
    db = sqlite3.connect(path)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            cur = db.execute(f'SELECT rowid, * FROM "{table}"')
            cols = [d[0] for d in cur.description]
            for row in cur:
                for col, value in zip(cols[1:], row[1:]):
                    if isinstance(value, bytes):
                        value = value.decode("utf-8", "replace")
                    if isinstance(value, str):
                        found += scan_text(value, f"{path}:{table}[{row[0]}].{col}", needles=needles,
                                           digests=col == "verification")
    finally:
        db.close()
    known = {f.kind for f in found}
    for raw in (path, Path(f"{path}-wal")):
        if raw.exists():
            text = raw.read_bytes().decode("latin-1")
            found += [f for f in scan_text(text, f"{raw} (raw bytes)", generic=False, needles=needles)
                      if f.kind not in known]
    return found


# -- a build directory and a whole set of places -------------------------------

def scan_paths(paths: Iterable[Path], *, image: bool | None = None,
               needles: dict[str, str] | None = None) -> list[Finding]:
    found: list[Finding] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found += scan_tree(p, image=image, needles=needles)
        elif p.exists():
            found += scan_file(p, needles=needles)
    return found


# -- needles: exact values that must appear nowhere ---------------------------

def env_needles(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The values of every provider's secret credentials set in this environment."""
    environ = os.environ if environ is None else environ
    out: dict[str, str] = {}
    for cls in PROVIDERS.values():
        for cred in cls.credentials:
            value = environ.get(cred.env, "")
            if cred.secret and len(value) >= 8 and value not in EXAMPLE_VALUES:
                out[f"${cred.env}"] = value
    return out


PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----\s*(.*?)-----END CERTIFICATE-----", re.S)


def ca_needles(*pem_files: Path) -> dict[str, str]:
    """For the CA certificates a build added (to trust a proxy): one line of each body, to find them
    anywhere in the image, also merged into /etc/ssl/certs/ca-certificates.crt."""
    out: dict[str, str] = {}
    for f in pem_files:
        text = Path(f).read_text(errors="replace")
        for i, m in enumerate(PEM_CERT.finditer(text)):
            lines = [ln.strip() for ln in m.group(1).split() if len(ln.strip()) >= 40]
            if lines:
                out[f"the build CA {Path(f).name}#{i}"] = lines[len(lines) // 2]
    return out


# -- a live host (testinfra), e.g. the in-build gate or a fresh VM ------------------

# A cheap first pass inside the guest (grep -E); the rules above decide on the host.
# Case-insensitive; must cover every rule (tests/test_secretscan.py checks that it does).
GREP_TRIGGERS = (r"private key|putty-user-key|akia|asia|agpa|aida|aroa|anpa|aipa|do[opr]_v1_|gh[pousr]_|github_pat_|"
                 r"aiza|xox[abprs]-|service_account|pass|secret|token|api_?key|credential|_key|linode|"
                 r"://[^/ ]+:[^/ ]+@|_proxy|acquire::|_ca_bundle|ssl_cert_|pip_|ca_certs|cainfo")


PIP_CONFS = ("etc/pip.conf", "etc/xdg/pip/pip.conf", "root/.pip/pip.conf", "root/.config/pip/pip.conf",
             "home/*/.pip/pip.conf", "home/*/.config/pip/pip.conf")


def _run_as_root(host, cmd: str):
    if host.run("id -u").stdout.strip() != "0":
        with host.sudo():
            return host.run(cmd)
    return host.run(cmd)


def scan_host(host, roots: Iterable[str] = IMAGE_ROOTS, allow: Iterable[str] = (),
              needles: dict[str, str] | None = None, root: str = "/") -> list[Finding]:
    """Scan a running machine through a testinfra host (SSH, docker, local).

    find + grep run inside the guest (as root: sudo when not root) and send back only the
    lines that might matter; the rules run here. Needles (secret values) are matched on
    those lines only and are never sent to the guest. `root`: where the image's / is
    (a mounted image, a chroot); findings name paths inside the image.
    """
    base = "/" + root.strip("/") if root.strip("/") else ""
    dirs = " ".join(shlex.quote(f"{base}/{r.strip('/')}") for r in roots)
    prune = " -o ".join(f"-name {shlex.quote(d)}" for d in sorted(SKIP_DIRS))
    pips = " ".join(f"{shlex.quote(base)}/{c}" for c in PIP_CONFS)
    script = (
        f"for d in {dirs}; do [ -d \"$d\" ] && [ ! -L \"$d\" ] && echo \"$d\"; done | "
        f"while read -r d; do find \"$d\" \\( {prune} \\) -prune -o -type f -size -{MAX_FILE_BYTES // 1024}k -print0; "
        f"done | xargs -0 -r grep -HnIiE -e {shlex.quote(GREP_TRIGGERS)} 2>/dev/null; "
        f"echo '#djbake-cas:'; find {shlex.quote(base)}/{BUILD_CA_DIR} -type f 2>/dev/null; "
        f"echo '#djbake-pip:'; for f in {pips}; do "
        f"[ -f \"$f\" ] && grep -HnE '^[[:space:]]*(cert|client-cert|proxy|trusted-host|index-url|extra-index-url)"
        f"[[:space:]]*=' \"$f\"; done; echo '#djbake-end'"
    )
    cmd = f"sh -c {shlex.quote(script)}"
    out = _run_as_root(host, cmd)
    if "#djbake-end" not in out.stdout.splitlines():
        # Not "no findings": the scan did not run (host gone, no shell, sudo refused).
        raise RuntimeError(f"secret scan did not run on the host (exit {out.rc}): {out.stderr.strip()[:200]}")
    return parse_host_output(out.stdout, allow=allow, needles=needles, root=base)


def parse_host_output(stdout: str, allow: Iterable[str] = (), needles: dict[str, str] | None = None,
                      root: str = "") -> list[Finding]:
    allowed = tuple("/" + a.strip("/") for a in allow) or ("\0",)
    found: list[Finding] = []
    section = "grep"
    for raw in stdout.splitlines():
        if raw == "#djbake-end":
            break
        if raw in ("#djbake-cas:", "#djbake-pip:"):
            section = raw[8:-1]
            continue
        if root and raw.startswith(root + "/"):
            raw = raw[len(root):]
        if section == "cas":
            if raw.strip() and not raw.startswith(allowed):
                found.append(Finding(raw.strip(), 1, "build-ca", "a CA added to the image's trust store"))
            continue
        m = re.match(r"^(/[^:]*):(\d+):(.*)$", raw)
        if not m or m[1].startswith(allowed):
            continue
        path, line, text = m[1], int(m[2]), m[3]
        if section == "pip":
            found.append(Finding(path, line, "build-ca", f"pip {text.split('=')[0].strip()} setting"))
            continue
        parts = set(path.split("/"))
        found += scan_text(text, path, generic=not (CODE_DIRS & parts), image=True,
                           code=path.endswith(CODE_SUFFIXES), needles=needles, first_line=line)
    return found


def unchanged_package_files(host, paths: Iterable[str]) -> set[str]:
    """Those of `paths` that a Debian package installed and nobody changed since (dpkg's md5sum).

    Packaged files carry example credentials and regexes that look like
    assignments (fail2ban's filters and actions); as shipped they are the
    distribution's, not something a build left. Changed, they are scanned
    like any other file.
    """
    paths = sorted(p for p in set(paths) if p.startswith("/"))
    if not paths:
        return set()
    script = (
        "conffiles=$(dpkg-query -W -f='${Conffiles}\\n' 2>/dev/null); "
        "for f in \"$@\"; do [ -f \"$f\" ] || continue; sum=$(md5sum <\"$f\" | cut -d' ' -f1); "
        "if grep -qxF \"$sum  ${f#/}\" /var/lib/dpkg/info/*.md5sums 2>/dev/null "
        "|| printf '%s\\n' \"$conffiles\" | grep -qF \" $f $sum\"; then echo \"$f\"; fi; done"
    )
    cmd = "sh -c " + shlex.quote(script) + " sh " + " ".join(shlex.quote(p) for p in paths)
    out = _run_as_root(host, cmd)
    return set(out.stdout.splitlines()) & set(paths)
