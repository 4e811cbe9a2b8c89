"""In-cluster checks of the app release, run by molecule/app/verify.yml through pytest-testinfra's kubectl backend.

They need real containers (kubectl exec, traffic between pods), so they run on kind and are skipped on the
hermetic cluster, where kwok fakes the pods.
"""

import os

import pytest

SERVICE_URL = os.environ.get("TENSAFE_SERVICE_URL", "http://tensafe.molecule-app.svc:8000")

pytestmark = pytest.mark.skipif(
    os.environ.get("MOLECULE_CLUSTER") != "kind",
    reason=os.environ.get("MOLECULE_SKIP_REASON", "needs real containers: run with MOLECULE_CLUSTER=kind"),
)


@pytest.mark.parametrize("path", ["/health", "/readiness"])
def test_api_answers_inside_the_cluster(host, path):
    """The Service routes to a Ready pod and the API answers 200 (NetworkPolicy lets the test-pod labels in)."""
    result = host.run("curl -fsS -o /dev/null -w '%%{http_code}' --max-time 10 %s%s", SERVICE_URL, path)
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "200"
