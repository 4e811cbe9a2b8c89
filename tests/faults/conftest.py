"""Shared fixtures of the fault tests: the hermetic cluster, a namespace per test, playbook runs, a run interrupted
the hard way (its process group and every process it left behind killed), and the apiserver stopped and restarted.

Generic on purpose: tests/faults holds several suites (Helm faults, runtime faults) on the same cluster.
"""
import json
import os
import pathlib
import signal
import subprocess
import time
import uuid

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CLUSTER = pathlib.Path(os.environ.get("CLUSTER_DIR", ROOT / ".cluster"))
KUBECONFIG = CLUSTER / "kubeconfig"
ENV = dict(os.environ, PATH=f"{ROOT / 'bin'}:{ROOT / '.venv/bin'}:{os.environ['PATH']}",
           ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), KUBECONFIG=str(KUBECONFIG),
           ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")


def sh(*cmd, check=True, timeout=300, **kwargs):
    return subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, check=check, timeout=timeout,
                          **kwargs)


@pytest.fixture(scope="session")
def cluster():
    """The hermetic cluster of this checkout (started when it is not running); its kubeconfig path. Its ports come
    from the environment (CLUSTER_APISERVER_PORT etc., see docs/hermetic-cluster.md): export the same ones as for the
    hack/cluster-up.sh that started it, or it is restarted on the default ports."""
    sh("hack/cluster-up.sh", timeout=600)
    return KUBECONFIG


@pytest.fixture()
def namespace(cluster):
    """A fresh namespace, with every Helm release in it uninstalled and the namespace deleted afterwards."""
    name = f"faults-{uuid.uuid4().hex[:6]}"
    sh("kubectl", "create", "namespace", name)
    yield name
    for release in json.loads(sh("helm", "list", "-a", "-n", name, "-o", "json", check=False).stdout or "[]"):
        sh("helm", "uninstall", release["name"], "-n", name, "--no-hooks", check=False)
    sh("kubectl", "delete", "namespace", name, "--ignore-not-found", "--wait=false", check=False)


class Run:
    def __init__(self, completed, seconds):
        self.rc, self.out, self.seconds = completed.returncode, completed.stdout + completed.stderr, seconds

    def recap(self):
        """{'ok': n, 'changed': n, ...} of the PLAY RECAP (one host)."""
        for line in self.out.splitlines():
            if line.startswith("localhost") and "changed=" in line:
                return {key: int(value) for key, value in (item.split("=") for item in line.split(":", 1)[1].split())}
        raise AssertionError(f"no PLAY RECAP in:\n{self.out[-3000:]}")

    def __repr__(self):
        return f"<run rc={self.rc} {self.seconds:.0f}s:\n{self.out[-4000:]}>"


def playbook(path, *args, extra=None, timeout=600):
    """ansible-playbook path args..., with extra vars as JSON; returns a Run (never raises on failure)."""
    cmd = ["ansible-playbook", str(path), *args]
    if extra:
        cmd += ["-e", json.dumps(extra)]
    start = time.monotonic()
    completed = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)
    run = Run(completed, time.monotonic() - start)
    print(f"{path.name} rc={run.rc} {run.seconds:.1f}s")
    return run


def start_playbook(path, *args, extra=None, log=None):
    """The same, in the background, in a session of its own (so that it can be killed as a whole)."""
    cmd = ["ansible-playbook", str(path), *args]
    if extra:
        cmd += ["-e", json.dumps(extra)]
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def wait_for(predicate, what, timeout=120, interval=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def kill_hard(process, marker):
    """Kill a run as a crash or `kill -9` would: its process group, and the processes it left running in sessions of
    their own (Ansible's async jobs daemonize) whose command line holds marker. Only processes this test started."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=30)
    for proc in pathlib.Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline and int(proc.name) != os.getpid():
            try:
                os.kill(int(proc.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


def helm_history(release, namespace):
    result = sh("helm", "history", release, "-n", namespace, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else []


def helm_records(namespace):
    """name -> resourceVersion of every Helm release record in namespace: a write to a release changes it."""
    items = json.loads(sh("kubectl", "get", "secrets", "-n", namespace, "-l", "owner=helm", "-o", "json").stdout)["items"]
    return {item["metadata"]["name"]: item["metadata"]["resourceVersion"] for item in items}


def resource_versions(namespace, *kinds):
    """kind/name -> resourceVersion of the objects of these kinds in namespace."""
    items = json.loads(sh("kubectl", "get", ",".join(kinds), "-n", namespace, "-o", "json").stdout)["items"]
    return {f"{item['kind']}/{item['metadata']['name']}": item["metadata"]["resourceVersion"] for item in items}


def component_pid(name):
    """PID of a running component of the hermetic cluster (hack/cluster-up.sh's pids/), or None."""
    try:
        pid = int((CLUSTER / "pids" / f"{name}.pid").read_text())
        start = (CLUSTER / "pids" / f"{name}.start").read_text().strip()
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return None
    return pid if stat[0] not in ("Z", "X") and stat[19] == start else None


@pytest.fixture()
def apiserver(cluster):
    """Stop the kube-apiserver (SIGTERM to its process group, as hack/cluster-down.sh does) with .stop(); it is
    started again with .start() (hack/cluster-up.sh, idempotent) and in any case at the end of the test."""
    class ApiServer:
        def stop(self):
            pid = component_pid("kube-apiserver")
            assert pid, "the kube-apiserver is not running"
            os.killpg(pid, signal.SIGTERM)
            try:  # a graceful stop drains open requests (Helm's watches) first; hack/cluster-down.sh waits as long
                wait_for(lambda: component_pid("kube-apiserver") is None, "the kube-apiserver to stop", timeout=20)
            except AssertionError:
                os.killpg(pid, signal.SIGKILL)
                wait_for(lambda: component_pid("kube-apiserver") is None, "the kube-apiserver to die", timeout=20)

        def start(self):
            sh("hack/cluster-up.sh", timeout=600)

    server = ApiServer()
    yield server
    if component_pid("kube-apiserver") is None:
        server.start()
