"""The unseal keys are never lost to a full disk: the bootstrap against a real OpenBao (raft storage, one server)
with vault_server_init_output_file on a tiny tmpfs.

(a) room for a small probe but not for the real file: refused before Vault is initialised;
(b) the disk fills up between the probe and the write (a proxy in front of OpenBao fills it when sys/init passes):
    the keys go to vault_server_init_output_fallback_file, the run says so, and a rerun after a restart unseals from there;
(c) no fallback: the run says the keys are only in its memory and retries; space freed meanwhile -> stored;
    never freed -> it fails naming each location and its error, and the keys were never printed.

Mounting needs root (CI runs as root); elsewhere these tests skip.
"""
import contextlib
import http.server
import json
import os
import pathlib
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from conftest import api, free_port
from test_bootstrap import assert_no_secret, decrypt, role_vars, run

SHARES, THRESHOLD = 16, 3  # 16 keys: the encrypted file (~4.4 kB) needs two tmpfs pages, a small probe one
PAGE = 4096


@pytest.fixture()
def tiny(tmp_path):
    """A 16 KiB tmpfs."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs needs root (CI runs as root)")
    mountpoint = tmp_path / "tiny"
    mountpoint.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k,mode=0700", "tmpfs", str(mountpoint)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield mountpoint
    subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def free_bytes(directory):
    vfs = os.statvfs(directory)
    return vfs.f_bavail * vfs.f_frsize


def fill(directory, leave=0):
    """Fill the filesystem of directory until `leave` bytes are free."""
    with open(directory / "filler", "ab", buffering=0) as handle:
        if leave:
            handle.write(b"\0" * (free_bytes(directory) - leave))
        else:
            with contextlib.suppress(OSError):
                while True:
                    handle.write(b"\0" * PAGE)
    assert free_bytes(directory) == leave, free_bytes(directory)


class InitProxy:
    """Forwards to OpenBao; right after sys/init succeeded (before the answer reaches the role) it runs a hook, and it
    keeps the init answer so the tests can check that no key was printed."""

    def __init__(self, upstream, on_init):
        proxy = self
        self.init_answer = None

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None
                request = urllib.request.Request(upstream + self.path, data=body, method=self.command)
                for name in ("X-Vault-Token", "Content-Type", "X-Vault-Request"):
                    if self.headers.get(name):
                        request.add_header(name, self.headers[name])
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        status, raw = response.status, response.read()
                except urllib.error.HTTPError as error:
                    status, raw = error.code, error.read()
                if self.command in ("PUT", "POST") and self.path == "/v1/sys/init" and status == 200:
                    proxy.init_answer = raw.decode()
                    on_init()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_PUT = do_POST = do_DELETE = forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def assert_nothing_printed(self, output):
        assert self.init_answer, "sys/init never passed through the proxy"
        answer = json.loads(self.init_answer)
        assert_no_secret(output, {"root_token": answer["root_token"], "unseal_keys_b64": answer["keys_base64"]})

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def proxied(single):
    """The single OpenBao server behind an InitProxy; set proxied.on_init before the run."""
    hooks = {"on_init": lambda: None}
    proxy = InitProxy(single.urls[0], lambda: hooks["on_init"]())
    proxy.hooks = hooks
    proxy.single = single
    yield proxy
    proxy.close()


def bootstrap(proxy, init_file, tmp_path, **extra):
    variables = role_vars(proxy.single, init_file, vault_server_init_key_shares=SHARES, vault_server_init_key_threshold=THRESHOLD,
                          **extra)
    variables.update(vault_server_addr=proxy.url, vault_server_addresses=[proxy.url])
    started = time.monotonic()
    result = run("bootstrap.yml", variables, tmp_path)
    return result, result.stdout + result.stderr, time.monotonic() - started


def initialized(cluster):
    return api(cluster.urls[0], "sys/seal-status")[1]["initialized"]


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name != "filler")


def test_no_room_for_the_real_file_refuses_before_vault_is_initialised(proxied, tiny, tmp_path):
    fill(tiny, leave=PAGE)  # a 374-byte probe fits, the ~4.4 kB file does not
    result, output, _ = bootstrap(proxied, tiny / "vault-init.yml", tmp_path)
    assert result.returncode != 0, output[-3000:]
    assert initialized(proxied.single) is False, "Vault was initialised although its keys could not be stored"
    assert proxied.init_answer is None
    assert re.search(r"encrypted init file \(\d+ bytes for 16 unseal key shares\) must fit", re.sub(r"\s+", " ", output)), \
        output[-3000:]
    flat = re.sub(r"\s+", " ", output)
    assert f"{tiny}/vault-init.yml cannot hold" in flat and "No space left on device" in flat, output[-3000:]
    assert "Vault was not initialised by this run" in flat
    assert leftovers(tiny) == [], "the probe left files behind"


def test_disk_filled_after_the_probe_keys_go_to_the_fallback_and_a_rerun_unseals_from_it(proxied, tiny, tmp_path):
    fallback_dir = tmp_path / "second-disk"
    fallback_dir.mkdir(mode=0o700)
    fallback = fallback_dir / "vault-init.yml"
    proxied.hooks["on_init"] = lambda: fill(tiny)
    result, output, _ = bootstrap(proxied, tiny / "vault-init.yml", tmp_path, vault_server_init_output_fallback_file=str(fallback))
    assert result.returncode == 0, output[-4000:]
    assert not (tiny / "vault-init.yml").exists()
    assert leftovers(tiny) == [] and leftovers(fallback_dir) == ["vault-init.yml"], "temporary files left behind"
    assert re.search(rf"written encrypted to {re.escape(str(fallback))} \(vault_server_init_output_fallback_file: "
                     rf"{re.escape(str(tiny))}/vault-init.yml could not be written: \[Errno 28\] No space left on device",
                     re.sub(r"\s+", " ", output)), output[-4000:]
    assert oct(fallback.stat().st_mode & 0o777) == "0o600"
    document = decrypt(fallback, tmp_path)
    assert len(document["unseal_keys_b64"]) == SHARES
    # The probe's stand-ins (44-character keys, a 256-character root token) bound the real values.
    assert max(len(k) for k in document["unseal_keys_b64"]) <= 44 and len(document["root_token"]) <= 256
    assert proxied.single.sealed() == [False]
    proxied.assert_nothing_printed(output)

    # The keys are recoverable: a restarted (sealed) Vault is unsealed from the fallback file by the next run.
    proxied.single.stop()
    proxied.single.start()
    assert proxied.single.sealed() == [True]
    result, output, _ = bootstrap(proxied, tiny / "vault-init.yml", tmp_path, vault_server_init_output_fallback_file=str(fallback))
    assert result.returncode == 0, output[-4000:]
    assert proxied.single.sealed() == [False]
    assert f"The unseal keys are in {fallback}" in re.sub(r"\s+", " ", output)
    assert_no_secret(output, document)


def test_no_fallback_keys_held_in_memory_and_stored_once_space_is_freed(proxied, tiny, tmp_path):
    timer = threading.Timer(8, lambda: (tiny / "filler").unlink(missing_ok=True))

    def fill_then_free_later():
        fill(tiny)
        timer.start()

    proxied.hooks["on_init"] = fill_then_free_later
    try:
        result, output, _ = bootstrap(proxied, tiny / "vault-init.yml", tmp_path, vault_server_init_output_retry_timeout=60)
    finally:
        timer.cancel()
    flat = re.sub(r"\s+", " ", output)
    assert result.returncode == 0, output[-4000:]
    assert re.search(rf"could not be stored: {re.escape(str(tiny))}/vault-init.yml: \[Errno 28\] No space left on device\. "
                     r"They exist only in this run'{1,2}s memory \(never printed\)\. Free space in "
                     rf"{re.escape(str(tiny))} now: this run retries every 5 s for 60 s", flat), output[-4000:]
    assert "FAILED - RETRYING" in output
    assert f"written encrypted to {tiny}/vault-init.yml" in flat
    document = decrypt(tiny / "vault-init.yml", tmp_path)
    assert len(document["unseal_keys_b64"]) == SHARES
    assert leftovers(tiny) == ["vault-init.yml"]
    assert proxied.single.sealed() == [False]
    proxied.assert_nothing_printed(output)


def test_no_fallback_and_no_room_fails_naming_where_the_keys_went(proxied, tiny, tmp_path):
    proxied.hooks["on_init"] = lambda: fill(tiny)
    result, output, _ = bootstrap(proxied, tiny / "vault-init.yml", tmp_path, vault_server_init_output_retry_timeout=0)
    flat = re.sub(r"\s+", " ", output)
    assert result.returncode != 0
    assert re.search(rf"could not be stored in {re.escape(str(tiny))}/vault-init.yml "
                     rf"\({re.escape(str(tiny))}/vault-init.yml: \[Errno 28\] No space left on device\)\. "
                     r"They were held only in this run'{1,2}s memory, were never printed, and are lost", flat), output[-4000:]
    assert leftovers(tiny) == [], "temporary files left behind"
    assert proxied.single.sealed() == [True]
    proxied.assert_nothing_printed(output)
