#!/usr/bin/env python3
"""docs/deploy/gemmaforge.yaml is valid YAML, holds a Deployment, a Service and an InferencePool,
and agrees with itself and with the server: one port everywhere, /health as readiness, /livez as
liveness, a grace period longer than --shutdown-timeout, the pool selecting the Deployment's pods.
Exit 0 pass, 1 fail, 77 skipped (no PyYAML)."""
import sys

try:
    import yaml
except ImportError:
    print("SKIPPED: PyYAML is not installed")
    sys.exit(77)

path = sys.argv[1]
docs = [d for d in yaml.safe_load_all(open(path)) if d]
kinds = {d["kind"]: d for d in docs}
assert set(kinds) == {"Deployment", "Service", "InferencePool"}, sorted(kinds)
dep, svc, pool = kinds["Deployment"], kinds["Service"], kinds["InferencePool"]
pod = dep["spec"]["template"]
labels = pod["metadata"]["labels"]
assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
c = pod["spec"]["containers"][0]
args = dict(a[2:].split("=", 1) for a in c["args"])
port = int(args["port"])
assert args["host"] == "0.0.0.0", args
assert [p["containerPort"] for p in c["ports"]] == [port]
assert c["readinessProbe"]["httpGet"]["path"] == "/health"
assert c["livenessProbe"]["httpGet"]["path"] == "/livez"
assert pod["spec"]["terminationGracePeriodSeconds"] > float(args["shutdown-timeout"])
assert svc["spec"]["selector"].items() <= labels.items()
assert svc["spec"]["ports"][0]["targetPort"] == port
assert pool["apiVersion"].startswith("inference.networking"), pool["apiVersion"]
assert pool["spec"]["targetPortNumber"] == port
assert pool["spec"]["selector"].items() <= labels.items()
assert pool["spec"]["extensionRef"]["name"]
print("PASS")
