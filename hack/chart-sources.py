#!/usr/bin/env python3
"""Which Helm charts of the stack can be fetched from here? Prints one JSON object per unreachable chart.

Reads every role's <role>_<component>_chart_{repo,name,version,archive_dir} defaults, overlaid with the
inventory's group_vars where they are plain values, and probes each source the way helm would reach it.
With --pull DIR (`make charts`), `helm pull`s every pinned upstream chart into DIR instead: a chart mirror for the
roles' *_chart_archive_dir and the tests (CHART_MIRROR), for machines with internet access.
"""
import argparse
import json
import pathlib
import re
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Ansible's !unsafe and !vault tags: their values are never chart sources, so keep them as plain strings.
yaml.SafeLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))
yaml.SafeLoader.add_constructor("!vault", lambda loader, node: loader.construct_scalar(node))
ROLES = ROOT / "collections/ansible_collections/tensafe/k8s/roles"


def load_vars(inventory):
    merged = {}
    for role in sorted(ROLES.iterdir()):
        merged.update(yaml.safe_load((role / "defaults/main.yml").read_text()) or {})
    for path in sorted((pathlib.Path(inventory) / "group_vars").rglob("*.yml")):
        for key, value in (yaml.safe_load(path.read_text()) or {}).items():
            if not (isinstance(value, str) and "{{" in value):
                merged[key] = value
    return merged


def probe(repo, timeout=5.0):
    """None when reachable, else the reason."""
    if repo.startswith(("https://", "http://")):
        url = repo.rstrip("/") + "/index.yaml"
    elif repo.startswith("oci://"):
        url = "https://" + repo[len("oci://"):].split("/", 1)[0] + "/v2/"
    else:
        return None if (pathlib.Path(repo)).is_dir() else f"local directory {repo} does not exist"
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="GET"), timeout=timeout).close()
    except urllib.error.HTTPError:
        return None  # the server answered (401 from a registry is normal)
    except (urllib.error.URLError, socket.timeout, ssl.SSLError, OSError) as exc:
        return f"{url}: {getattr(exc, 'reason', exc)}"
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inventory", default=str(ROOT / "inventories/local"))
    parser.add_argument("--pull", metavar="DIR", help="helm pull every pinned upstream chart into DIR")
    args = parser.parse_args()
    variables = load_vars(args.inventory)
    if args.pull:
        return pull(variables, pathlib.Path(args.pull))
    for key in sorted(variables):
        match = re.fullmatch(r"([a-z]+)_([a-z_]+)_chart_repo", key)
        if not match:
            continue
        role, component = match.groups()
        prefix = f"{role}_{component}_chart"
        repo = variables[key] or ""
        archive_dir = variables.get(f"{prefix}_archive_dir") or ""
        name, version = variables.get(f"{prefix}_name"), variables.get(f"{prefix}_version")
        if archive_dir:
            archive = pathlib.Path(archive_dir) / f"{name}-{version}.tgz"
            reason = None if archive.is_file() else f"{archive} does not exist"
        elif not repo:
            continue  # bundled in the collection
        else:
            reason = probe(repo)
        if reason:
            print(json.dumps({"role": role, "component": component, "chart": name, "version": version,
                              "repo": repo, "reason": reason, "variable": f"{prefix}_archive_dir"}))
    return 0


def pull(variables, mirror):
    """helm pull <name>-<version>.tgz of every repository-sourced chart into mirror; archives already there stay."""
    mirror.mkdir(parents=True, exist_ok=True)
    failed = 0
    for key in sorted(variables):
        match = re.fullmatch(r"([a-z]+)_([a-z_]+)_chart_repo", key)
        repo = variables[key] if match else ""
        if not repo or not repo.startswith(("https://", "http://", "oci://")):
            continue
        prefix = key[: -len("_repo")]
        name, version = variables[f"{prefix}_name"], variables[f"{prefix}_version"]
        if (mirror / f"{name}-{version}.tgz").is_file():
            continue
        source = [f"{repo.rstrip('/')}/{name}"] if repo.startswith("oci://") else [name, "--repo", repo]
        result = subprocess.run(["helm", "pull", *source, "--version", str(version), "--destination", str(mirror)],
                                check=False)
        failed += result.returncode != 0
        print(f"{name}-{version}.tgz: {'pulled' if result.returncode == 0 else 'FAILED'} from {repo}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
