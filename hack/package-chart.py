#!/usr/bin/env python3
"""Package charts/tensafe into the app role's files/ as <name>-<version>.tgz, byte-for-byte reproducibly.

The chart source lives outside the collection (Go templates are not YAML, and ansible-test would need ignore
entries for them); the collection ships the packaged chart, which the app role installs when
app_tensafe_chart_repo and app_tensafe_chart_archive_dir are empty. `helm package` does the packaging
(.helmignore, Chart.yaml checks); its archive carries the current time, so it is rewritten with fixed
timestamps, owners and member order, and written only when the bytes change. The output is gitignored:
every entry point that runs the role (make build/test/demo/bench, pytest, molecule) calls this first.

Usage: hack/package-chart.py [--check]   (--check: exit 1 if the packaged chart is missing or stale)
"""
import argparse
import gzip
import io
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tempfile

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHART = ROOT / "charts/tensafe"
FILES = ROOT / "collections/ansible_collections/tensafe/k8s/roles/app/files"
HELM = os.environ.get("HELM") or (str(ROOT / "bin/helm") if (ROOT / "bin/helm").exists() else shutil.which("helm"))


def chart_archive_name(chart=CHART):
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    return f"{meta['name']}-{meta['version']}.tgz"


def normalize(raw):
    """The same members, sorted, with mtime 0, root-owned, gzip header without a timestamp."""
    members = []
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as src:
        for info in src.getmembers():
            data = src.extractfile(info).read() if info.isfile() else None
            members.append((info, data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as dst:
            for info, data in sorted(members, key=lambda m: m[0].name):
                info.mtime = 0
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.pax_headers = {}
                info.mode = 0o755 if info.isdir() else 0o644
                dst.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def package(chart=CHART):
    if not HELM:
        sys.exit("package-chart: helm not found (make tools builds bin/helm; or set HELM)")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([HELM, "package", str(chart), "--destination", tmp], check=True, stdout=subprocess.DEVNULL)
        return normalize((pathlib.Path(tmp) / chart_archive_name(chart)).read_bytes())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report whether the packaged chart is current")
    args = parser.parse_args()
    target = FILES / chart_archive_name()
    data = package()
    current = target.is_file() and target.read_bytes() == data
    if args.check:
        print(f"{target.relative_to(ROOT)}: {'current' if current else 'missing or stale'}")
        return 0 if current else 1
    # One packaged chart only: an older version left behind would ship in the tarball.
    for old in FILES.glob("*.tgz"):
        if old != target:
            old.unlink()
    if not current:
        FILES.mkdir(parents=True, exist_ok=True)
        # Atomic: a playbook reading the archive while another entry point repackages never sees half a file.
        partial = target.with_name(f".{target.name}.{os.getpid()}")
        partial.write_bytes(data)
        os.replace(partial, target)
        print(f"package-chart: wrote {target.relative_to(ROOT)} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
