"""PostgreSQL backup and restore (the datastores role's backup/restore entry points, playbooks/backup.yml and restore.yml).

External mode, for real: a REAL PostgreSQL on loopback (servers.sh) and Debian's pg_dump/pg_restore on the control host.
Rows written -> backup -> table dropped -> restore -> rows back; rotation keeps datastores_backup_keep; a restore without
the confirmation refuses before any write; the before-upgrade trigger compares the app image with the release record
of a real Helm release on the hermetic cluster.

In-cluster mode: the backup and restore Jobs are applied on the hermetic cluster and their specs asserted (PVC, command,
Secret reference). The cluster's pods are kwok fakes: the Job completes without any pg_dump or pg_restore running, so
nothing here shows that the chart's image dumps or restores a database; only the external-mode tests do.

Needs the hermetic cluster (.cluster/kubeconfig, `make cluster-up`); skipped without one unless CI is set.
"""
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

import psycopg
import pytest
import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import chart_mirror  # noqa: E402  (tests/ is not a package)
from test_external_mode import ROOT, external_vars, kubeconfig, servers  # noqa: F401 (fixtures used by name)

NAMESPACE = "pytest-datastores-backup"
APP_NAMESPACE = "pytest-backup-app"
NAME = re.compile(r"^tensafe-tensafe-r(\d+)-\d{8}T\d{6}Z\.pgc$")


def run_playbook(tmp_path, kubeconfig, playbook, variables, *args):
    inv = tmp_path / "inventory"
    if not inv.exists():
        shutil.copytree(ROOT / "inventories" / "local", inv)
    cluster = {"tensafe_kubeconfig": str(kubeconfig), "tensafe_kube_context": "", "tensafe_no_log": True}
    (inv / "group_vars/all/cluster.yml").write_text(yaml.safe_dump(cluster))
    (inv / "group_vars/all/zz_backup.yml").write_text(yaml.safe_dump(variables))
    (inv / "group_vars/all/zz_backup.yml").chmod(0o600)
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    env["PATH"] = f"{ROOT / 'bin'}:{ROOT / '.venv/bin'}:{env['PATH']}"
    result = subprocess.run(["ansible-playbook", "-i", str(inv / "hosts.yml"), str(ROOT / "playbooks" / playbook), *args],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    # Whitespace folded: the yaml callback wraps long messages.
    return result, " ".join((result.stdout + result.stderr).split())


def kubectl(kubeconfig, *args, check=True):
    return subprocess.run([str(ROOT / "bin" / "kubectl"), "--kubeconfig", str(kubeconfig), *args],
                          capture_output=True, text=True, timeout=120, check=check)


def helm_install(kubeconfig, release, namespace, chart, *values):
    """A real Helm release of a real chart, without --wait (kwok's pods run nothing): what the backup reads of it is
    the release record (its revision and values) and the release's name."""
    subprocess.run([str(ROOT / "bin" / "helm"), "--kubeconfig", str(kubeconfig), "upgrade", "--install", release, str(chart),
                    "-n", namespace, "--create-namespace", *values],
                   capture_output=True, text=True, timeout=120, check=True)


def rows(servers):
    url = (f"postgresql://{servers['DATASTORES_TEST_PG_USER']}:{servers['DATASTORES_TEST_PG_PASSWORD']}@"
           f"{servers['DATASTORES_TEST_PG_HOST']}:{servers['DATASTORES_TEST_PG_PORT']}/{servers['DATASTORES_TEST_PG_DATABASE']}")
    return psycopg.connect(url, connect_timeout=10, autocommit=True)


def backups(directory):
    return sorted(p.name for p in directory.iterdir() if NAME.match(p.name))


@pytest.fixture()
def clean_namespaces(kubeconfig):
    yield
    for namespace in (NAMESPACE, APP_NAMESPACE):
        kubectl(kubeconfig, "delete", "namespace", namespace, "--ignore-not-found", "--wait=true", "--timeout=120s", check=False)


def backup_vars(servers, directory, **overrides):
    return external_vars(servers, datastores_namespace=NAMESPACE, datastores_backup_dir=str(directory),
                         datastores_backup_app_release_namespace=APP_NAMESPACE, **overrides)


def test_external_backup_restore_round_trip_and_rotation(servers, kubeconfig, tmp_path, clean_namespaces):
    directory = tmp_path / "backups"
    password = servers["DATASTORES_TEST_PG_PASSWORD"]
    with rows(servers) as conn:
        conn.execute("DROP TABLE IF EXISTS widgets")
        conn.execute("CREATE TABLE widgets (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO widgets VALUES (1, 'alpha'), (2, 'beta'), (3, 'gamma')")

    result, output = run_playbook(tmp_path, kubeconfig, "backup.yml", backup_vars(servers, directory, datastores_backup_keep=2), "-vvv")
    assert result.returncode == 0, output[-4000:]
    assert password not in output
    (first,) = backups(directory)
    assert NAME.match(first).group(1) == "0", first  # no app release deployed: revision 0
    assert (directory / first).read_bytes()[:5] == b"PGDMP", "not pg_dump's custom format"
    assert oct(directory.stat().st_mode & 0o777) == "0o700"

    with rows(servers) as conn:
        conn.execute("DROP TABLE widgets")

    # Without the confirmation: refused, named, nothing restored.
    result, output = run_playbook(tmp_path, kubeconfig, "restore.yml", backup_vars(servers, directory),
                                  "-e", f"datastores_restore_name={first}")
    assert result.returncode != 0
    assert f"datastores_restore_confirm={first}" in output, output[-3000:]
    with rows(servers) as conn:
        assert conn.execute("SELECT to_regclass('widgets')").fetchone() == (None,)

    # A wrong confirmation is no confirmation either.
    result, output = run_playbook(tmp_path, kubeconfig, "restore.yml", backup_vars(servers, directory),
                                  "-e", f"datastores_restore_name={first}", "-e", "datastores_restore_confirm=yes")
    assert result.returncode != 0 and "datastores_restore_confirm is 'yes'" in output, output[-3000:]

    result, output = run_playbook(tmp_path, kubeconfig, "restore.yml", backup_vars(servers, directory),
                                  "-e", f"datastores_restore_name={first}", "-e", f"datastores_restore_confirm={first}", "-vvv")
    assert result.returncode == 0, output[-4000:]
    assert password not in output
    with rows(servers) as conn:
        assert conn.execute("SELECT id, name FROM widgets ORDER BY id").fetchall() == [(1, "alpha"), (2, "beta"), (3, "gamma")]

    # A name that is not there: refused, listing what is.
    missing = "tensafe-tensafe-r9-20200101T000000Z.pgc"
    result, output = run_playbook(tmp_path, kubeconfig, "restore.yml", backup_vars(servers, directory),
                                  "-e", f"datastores_restore_name={missing}", "-e", f"datastores_restore_confirm={missing}")
    assert result.returncode != 0 and f"No backup {directory}/{missing}" in output and first in output, output[-3000:]

    # Rotation: two more backups (a second apart: the name holds the time), the newest two stay.
    for _ in range(2):
        time.sleep(1.1)
        result, output = run_playbook(tmp_path, kubeconfig, "backup.yml", backup_vars(servers, directory, datastores_backup_keep=2))
        assert result.returncode == 0, output[-4000:]
    kept = backups(directory)
    assert len(kept) == 2 and first not in kept, kept
    (directory / "unrelated.pgc").write_text("not ours")
    result, output = run_playbook(tmp_path, kubeconfig, "backup.yml", backup_vars(servers, directory, datastores_backup_keep=2))
    assert result.returncode == 0, output[-4000:]
    assert len(backups(directory)) == 2 and (directory / "unrelated.pgc").exists()


def test_external_backup_before_an_app_image_upgrade_only(servers, kubeconfig, tmp_path, clean_namespaces):
    """site.yml's trigger: a backup when the deployed app release (a real Helm record) runs another image, else none."""
    directory = tmp_path / "backups"
    deployed = {"repository": "tensafe/tensafe", "tag": "4.0.0", "digest": ""}
    on_upgrade = {"datastores_backup_only_on_upgrade": True}

    # No app release yet: nothing upgrades, no backup.
    variables = backup_vars(servers, directory, datastores_backup_app_image=dict(deployed, tag="4.1.0"), **on_upgrade)
    result, output = run_playbook(tmp_path, kubeconfig, "backup.yml", variables)
    assert result.returncode == 0, output[-4000:]
    assert "upgrades neither the app image nor a datastores release" in output
    assert not directory.exists() or backups(directory) == []

    app = (kubeconfig, "tensafe", APP_NAMESPACE, ROOT / "charts/tensafe", "--set-json", f"image={json.dumps(deployed)}")
    helm_install(*app)
    helm_install(*app)  # revision 2

    # The same image: no backup.
    result, output = run_playbook(tmp_path, kubeconfig, "backup.yml",
                                  backup_vars(servers, directory, datastores_backup_app_image=deployed, **on_upgrade))
    assert result.returncode == 0, output[-4000:]
    assert not directory.exists() or backups(directory) == []

    # Another tag: a backup named after the deployed revision, and the reason said.
    result, output = run_playbook(tmp_path, kubeconfig, "backup.yml", variables)
    assert result.returncode == 0, output[-4000:]
    (taken,) = backups(directory)
    assert NAME.match(taken).group(1) == "2", taken
    assert "the app release tensafe (revision 2) changes its image" in output and '"4.1.0"' in output, output[-3000:]

    # --check: says it would back up, writes nothing.
    result, output = run_playbook(tmp_path, kubeconfig, "backup.yml", variables, "--check")
    assert result.returncode == 0, output[-4000:]
    assert "Would back up PostgreSQL database tensafe" in output
    assert backups(directory) == [taken]


def test_external_backup_fails_clearly_without_a_directory(servers, kubeconfig, tmp_path):
    result, output = run_playbook(tmp_path, kubeconfig, "backup.yml", backup_vars(servers, ""))
    assert result.returncode != 0
    assert "datastores_backup_dir" in output and "absolute directory on the control host" in output, output[-3000:]


def test_in_cluster_backup_and_restore_jobs(kubeconfig, tmp_path, clean_namespaces):
    """The Jobs' specs on the real kube-apiserver; kwok completes their pods without running pg_dump/pg_restore."""
    # The real PostgreSQL chart of the chart mirror gives the backup a release to save (kwok runs no database).
    defaults = yaml.safe_load((ROOT / "collections/ansible_collections/tensafe/k8s/roles/datastores/defaults/main.yml").read_text())
    chart = chart_mirror.MIRROR / f"postgresql-{defaults['datastores_postgresql_chart_version']}.tgz"
    helm_install(kubeconfig, "tensafe-postgresql", NAMESPACE, chart)
    variables = {"datastores_namespace": NAMESPACE, "datastores_redis_enabled": False,
                 "datastores_backup_app_release_namespace": APP_NAMESPACE, "datastores_backup_pvc_size": "3Gi",
                 "datastores_backup_keep": 4}
    result, output = run_playbook(tmp_path, kubeconfig, "backup.yml", variables)
    assert result.returncode == 0, output[-4000:]

    pvc = json.loads(kubectl(kubeconfig, "-n", NAMESPACE, "get", "pvc", "tensafe-postgresql-backups", "-o", "json").stdout)
    assert pvc["spec"]["resources"]["requests"]["storage"] == "3Gi"
    jobs = json.loads(kubectl(kubeconfig, "-n", NAMESPACE, "get", "jobs", "-o", "json").stdout)["items"]
    (job,) = jobs
    assert job["metadata"]["name"].startswith("tensafe-postgresql-backup-")
    assert any(c["type"] == "Complete" and c["status"] == "True" for c in job["status"]["conditions"])
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "tensafe-db-secret", "key": "password"}
    assert "value" not in env["PGPASSWORD"]
    assert env["PGHOST"]["value"] == f"tensafe-postgresql.{NAMESPACE}.svc"
    assert env["BACKUP_KEEP"]["value"] == "4"
    assert NAME.match(env["BACKUP_FILE"]["value"].removeprefix("/backups/")), env["BACKUP_FILE"]
    script = container["command"][2]
    assert container["command"][:2] == ["/bin/sh", "-ec"]
    assert "pg_dump --format=custom --no-password" in script and "tail -n +$((BACKUP_KEEP + 1))" in script
    assert container["image"] == "docker.io/bitnamilegacy/postgresql:17.6.0-debian-12-r4"
    assert {"name": "backups", "persistentVolumeClaim": {"claimName": "tensafe-postgresql-backups"}} in pod["volumes"]
    assert {"name": "backups", "mountPath": "/backups"} in container["volumeMounts"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["activeDeadlineSeconds"] == 1800

    name = env["BACKUP_FILE"]["value"].removeprefix("/backups/")
    result, output = run_playbook(tmp_path, kubeconfig, "restore.yml", variables, "-e", f"datastores_restore_name={name}")
    assert result.returncode != 0 and f"datastores_restore_confirm={name}" in output, output[-3000:]
    assert len(json.loads(kubectl(kubeconfig, "-n", NAMESPACE, "get", "jobs", "-o", "json").stdout)["items"]) == 1

    result, output = run_playbook(tmp_path, kubeconfig, "restore.yml", variables,
                                  "-e", f"datastores_restore_name={name}", "-e", f"datastores_restore_confirm={name}")
    assert result.returncode == 0, output[-4000:]
    restore = [j for j in json.loads(kubectl(kubeconfig, "-n", NAMESPACE, "get", "jobs", "-o", "json").stdout)["items"]
               if "-restore-" in j["metadata"]["name"]]
    (restore,) = restore
    (container,) = restore["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["BACKUP_FILE"]["value"] == f"/backups/{name}"
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "tensafe-db-secret", "key": "password"}
    assert "pg_restore --clean --if-exists --no-owner --single-transaction" in container["command"][2]
