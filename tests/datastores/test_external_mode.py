"""The datastores role in external mode against REAL PostgreSQL and Redis servers on loopback (servers.sh).

- With the right credentials the role publishes tensafe-datastores, and its DATABASE_URL / REDIS_URL connect with
  psycopg and redis-py; a rerun changes nothing.
- With a wrong password (or a closed port) the run fails before any Kubernetes request, naming host, port, user and
  the driver's error, and never printing the password.

The failure cases need no cluster: the kubeconfig points at a recording HTTP server. The success case needs the
hermetic cluster (.cluster/kubeconfig, `make cluster-up`); it is skipped without one unless CI is set.
"""
import base64
import os
import pathlib
import shutil
import socket
import subprocess
import tempfile

import psycopg
import pytest
import redis
import yaml

import recording_api
from recording_api import Recorder

ROOT = pathlib.Path(__file__).resolve().parents[2]
SERVERS = ROOT / "tests" / "datastores" / "servers.sh"
PLAYBOOK = ROOT / "playbooks" / "datastores.yml"
NAMESPACE = "pytest-datastores-external"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def servers():
    # Not under pytest's 0700 tmp dir: as root, PostgreSQL runs as the postgres user and must reach its data dir.
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="tensafe-datastores-"))
    workdir.chmod(0o711)
    env = dict(os.environ, DATASTORES_TEST_DIR=str(workdir / "run"),
               DATASTORES_TEST_PG_PORT=str(free_port()), DATASTORES_TEST_REDIS_PORT=str(free_port()))
    started = subprocess.run([str(SERVERS), "start"], env=env, check=False, capture_output=True, text=True, timeout=180)
    assert started.returncode == 0, started.stdout + started.stderr
    values = dict(line.split("=", 1) for line in (workdir / "run" / "env").read_text().splitlines() if "=" in line)
    yield values
    subprocess.run([str(SERVERS), "stop"], env=env, check=False, capture_output=True, timeout=120)
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def fake_kubeconfig(tmp_path_factory):
    server, url = recording_api.start()
    path = recording_api.write_kubeconfig(tmp_path_factory.mktemp("fake-api") / "kubeconfig", url)
    yield path
    server.shutdown()


def cluster_answers(kubeconfig):
    if not kubeconfig.is_file():
        return False
    result = subprocess.run([str(ROOT / "bin" / "kubectl"), "--kubeconfig", str(kubeconfig), "get", "--raw", "/readyz"],
                            capture_output=True, text=True, timeout=30, check=False)
    return result.returncode == 0


@pytest.fixture(scope="module")
def kubeconfig():
    path = ROOT / ".cluster" / "kubeconfig"
    if not cluster_answers(path):
        if not os.environ.get("CI"):
            pytest.skip("no hermetic cluster (make cluster-up); CI starts it")
        subprocess.run([str(ROOT / "hack" / "cluster-up.sh")], cwd=ROOT, check=True, timeout=900)
    yield path


def external_vars(servers, **overrides):
    values = {
        "datastores_namespace": NAMESPACE,
        "datastores_postgresql_mode": "external",
        "datastores_postgresql_external_host": servers["DATASTORES_TEST_PG_HOST"],
        "datastores_postgresql_external_port": int(servers["DATASTORES_TEST_PG_PORT"]),
        "datastores_postgresql_username": servers["DATASTORES_TEST_PG_USER"],
        "datastores_postgresql_database": servers["DATASTORES_TEST_PG_DATABASE"],
        "datastores_postgresql_external_password": servers["DATASTORES_TEST_PG_PASSWORD"],
        "datastores_postgresql_external_sslmode": "disable",
        "datastores_redis_mode": "external",
        "datastores_redis_external_host": servers["DATASTORES_TEST_REDIS_HOST"],
        "datastores_redis_external_port": int(servers["DATASTORES_TEST_REDIS_PORT"]),
        "datastores_redis_external_password": servers["DATASTORES_TEST_REDIS_PASSWORD"],
    }
    values.update(overrides)
    return values


def run_role(tmp_path, kubeconfig, variables):
    """ansible-playbook playbooks/datastores.yml with a copy of inventories/local plus the given group_vars."""
    inv = tmp_path / "inventory"
    if inv.exists():
        shutil.rmtree(inv)
    shutil.copytree(ROOT / "inventories" / "local", inv)
    cluster = {"tensafe_kubeconfig": str(kubeconfig), "tensafe_kube_context": "", "tensafe_no_log": True}
    (inv / "group_vars/all/cluster.yml").write_text(yaml.safe_dump(cluster))
    (inv / "group_vars/all/zz_external.yml").write_text(yaml.safe_dump(variables))
    (inv / "group_vars/all/zz_external.yml").chmod(0o600)
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    env["PATH"] = f"{ROOT / 'bin'}:{ROOT / '.venv/bin'}:{env['PATH']}"
    result = subprocess.run(["ansible-playbook", "-i", str(inv / "hosts.yml"), str(PLAYBOOK)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    return result, result.stdout + result.stderr


def read_published(kubeconfig):
    out = subprocess.run([str(ROOT / "bin" / "kubectl"), "--kubeconfig", str(kubeconfig), "-n", NAMESPACE, "get", "secret",
                          "tensafe-datastores", "-o", "yaml"], capture_output=True, text=True, timeout=30, check=True)
    secret = yaml.safe_load(out.stdout)
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


def recap(output):
    return [line for line in output.splitlines() if line.startswith("localhost ")][-1]


@pytest.fixture()
def clean_namespace(kubeconfig):
    yield
    subprocess.run([str(ROOT / "bin" / "kubectl"), "--kubeconfig", str(kubeconfig), "delete", "namespace", NAMESPACE,
                    "--ignore-not-found", "--wait=true", "--timeout=120s"], capture_output=True, timeout=180, check=False)


def test_published_urls_connect_and_rerun_changes_nothing(servers, kubeconfig, tmp_path, clean_namespace):
    result, output = run_role(tmp_path, kubeconfig, external_vars(servers))
    assert result.returncode == 0, output[-4000:]
    for secret in (servers["DATASTORES_TEST_PG_PASSWORD"], servers["DATASTORES_TEST_REDIS_PASSWORD"]):
        assert secret not in output

    urls = read_published(kubeconfig)
    assert sorted(urls) == ["DATABASE_URL", "REDIS_URL"]
    assert urls["DATABASE_URL"].endswith("?sslmode=disable")
    with psycopg.connect(urls["DATABASE_URL"], connect_timeout=10) as conn:
        assert conn.execute("SELECT current_user, current_database()").fetchone() == ("tensafe", "tensafe")
    client = redis.Redis.from_url(urls["REDIS_URL"], socket_timeout=10)
    assert client.ping()
    client.set("tensafe:pytest", "ok")
    assert client.get("tensafe:pytest") == b"ok"

    result, output = run_role(tmp_path, kubeconfig, external_vars(servers))
    assert result.returncode == 0, output[-4000:]
    assert " changed=0 " in recap(output), recap(output)


def test_acl_user_and_read_endpoint_follow_the_inventory(servers, kubeconfig, tmp_path, clean_namespace):
    variables = external_vars(
        servers,
        datastores_redis_external_username=servers["DATASTORES_TEST_REDIS_USER"],
        datastores_redis_external_password=servers["DATASTORES_TEST_REDIS_USER_PASSWORD"],
        datastores_postgresql_external_read_host="localhost",
        datastores_redis_database=2,
    )
    result, output = run_role(tmp_path, kubeconfig, variables)
    assert result.returncode == 0, output[-4000:]
    urls = read_published(kubeconfig)
    assert sorted(urls) == ["DATABASE_READ_URL", "DATABASE_URL", "REDIS_URL"]
    assert urls["REDIS_URL"].startswith("redis://tensafe:") and urls["REDIS_URL"].endswith("/2")
    with psycopg.connect(urls["DATABASE_READ_URL"], connect_timeout=10) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    client = redis.Redis.from_url(urls["REDIS_URL"], socket_timeout=10)
    assert client.acl_whoami() == "tensafe"


@pytest.mark.parametrize("store", ["postgresql", "redis"])
def test_wrong_password_fails_clearly_before_any_cluster_call(servers, fake_kubeconfig, tmp_path, store):
    wrong = "Wr0ngPassw0rdFor" + store.capitalize()
    variables = external_vars(servers, **{f"datastores_{store}_external_password": wrong})
    Recorder.requests.clear()
    result, output = run_role(tmp_path, fake_kubeconfig, variables)
    assert result.returncode != 0
    port = servers["DATASTORES_TEST_PG_PORT" if store == "postgresql" else "DATASTORES_TEST_REDIS_PORT"]
    if store == "postgresql":
        assert f"PostgreSQL at 127.0.0.1:{port} as user 'tensafe'" in output, output[-4000:]
        assert 'password authentication failed for user "tensafe"' in output
    else:
        assert f"Redis at 127.0.0.1:{port} as user 'default'" in output, output[-4000:]
        assert "invalid username-password pair" in output or "WRONGPASS" in output
    assert f"datastores_{store}_external_*" in output
    assert wrong not in output
    assert Recorder.requests == [], f"the cluster was called before the failure: {Recorder.requests}"


def test_closed_port_names_host_and_port(servers, fake_kubeconfig, tmp_path):
    variables = external_vars(servers, datastores_postgresql_external_port=1)
    Recorder.requests.clear()
    result, output = run_role(tmp_path, fake_kubeconfig, variables)
    assert result.returncode != 0
    assert "PostgreSQL at 127.0.0.1:1 as user 'tensafe'" in output, output[-4000:]
    assert "Connection refused" in output or "connection refused" in output
    assert servers["DATASTORES_TEST_PG_PASSWORD"] not in output
    assert Recorder.requests == []
