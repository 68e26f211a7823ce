"""A real IMAP server for tests: Debian's dovecot on 127.0.0.1, an ephemeral port, TLS with a
throwaway CA (trustme), one user whose password is in `ImapServer.password`.

Missing dovecot skips the test with how to install it; under CI=true it fails instead.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER, PASSWORD = "bounces", "imap-pass-123"

CONFIG = """
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{root}/server.pem
ssl_key = <{root}/server.pem
disable_plaintext_auth = yes
auth_mechanisms = plain
default_internal_user = {internal}
default_login_user = {login}
first_valid_uid = 1
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ImapServer:
    """dovecot in the foreground, its whole state in a temporary folder."""

    user = USER
    password = PASSWORD

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="feedpub-dovecot-"))
        self.root.chmod(0o755)
        self.ca = trustme.CA()
        self.ca_file = self.root / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(
            str(self.root / "server.pem"))
        (self.root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        if os.geteuid() == 0:  # dovecot never hands mail to root: use its own users
            mail = pwd.getpwnam("dovecot")
            internal, login, uid, gid = "dovecot", "dovenull", mail.pw_uid, mail.pw_gid
        else:
            me = pwd.getpwuid(os.geteuid())
            internal = login = me.pw_name
            uid, gid = me.pw_uid, me.pw_gid
        for sub in ("mail", "home"):
            (self.root / sub).mkdir()
            os.chown(self.root / sub, uid, gid)
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.config = self.root / "dovecot.conf"
        self.settings = {"root": self.root, "internal": internal, "login": login,
                         "uid": uid, "gid": gid}

    def start(self) -> None:
        for _ in range(5):  # the port may be taken between choosing and binding it
            self.port = _free_port()
            self.config.write_text(CONFIG.format(port=self.port, **self.settings))
            self.process = subprocess.Popen([DOVECOT, "-F", "-c", str(self.config)],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                    return
                except OSError:
                    time.sleep(0.05)
            self.stop()
        log = self.root / "dovecot.log"
        raise RuntimeError("dovecot did not start: "
                           + (log.read_text() if log.exists() else "no log"))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, folder: str = "INBOX") -> str:
        return f"imaps://{USER}@127.0.0.1:{self.port}/{folder}"

    def client(self):  # noqa: ANN201 - an IMAPClient, logged in
        import ssl

        from imapclient import IMAPClient

        context = ssl.create_default_context(cafile=str(self.ca_file))
        client = IMAPClient("127.0.0.1", port=self.port, ssl=True, ssl_context=context,
                            timeout=10)
        client.login(USER, PASSWORD)
        return client


@pytest.fixture
def imap_server() -> Iterator[ImapServer]:
    if not os.path.exists(DOVECOT):
        message = ("dovecot is not installed: apt-get install dovecot-imapd "
                   "(.ci/run installs it) to run the IMAP tests")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    server = ImapServer()
    try:
        server.start()
        yield server
    finally:
        server.close()
