#!/usr/bin/env bash
# ansible-test sanity on the collection. ansible-test bootstraps pip in its venvs with a script from
# ci-files.testing.ansible.com, which is unreachable here; a shim runs the same pip from PyPI's wheel.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
home="$root/.cache/ansible-test-home"
pip_version=$("$root/.venv/bin/python" - <<'PY'
from ansible_test._internal.python_requirements import get_venv_packages
from ansible_test._internal.host_configs import NativePythonConfig
print(get_venv_packages(NativePythonConfig(version="3.11", path="/usr/bin/python3"))["pip"])
PY
)
shim="$home/.ansible/test/cache/get_pip_${pip_version//./_}.py"
if [ ! -f "$shim" ]; then
  mkdir -p "$home/wheels" "$(dirname "$shim")"
  "$root/.venv/bin/pip" download --quiet --no-deps -d "$home/wheels" "pip==$pip_version"
  cat > "$shim" <<PY
# Stand-in for get-pip.py: install the requested packages with pip run from its wheel.
import runpy, sys
sys.path.insert(0, "$home/wheels/pip-$pip_version-py3-none-any.whl")
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.argv = ["pip"] + (args if args[:1] == ["install"] else ["install"] + args)
runpy.run_module("pip", run_name="__main__", alter_sys=True)
PY
fi
cd "$root/collections/ansible_collections/tensafe/k8s"
HOME="$home" exec "$root/.venv/bin/ansible-test" sanity --python 3.11 --color no "$@"
