"""The deployment files checked against the schema and against the binaries.

Run by deploy/check.sh, which prepares the Python environment; see there for usage.

For each shape under deploy/kubernetes/ it checks:
  - every manifest against the Kubernetes OpenAPI schema (strict: unknown fields fail),
    offline, with the schemas kubernetes-validate ships, for the oldest and newest
    Kubernetes versions in KUBERNETES_VERSIONS;
  - the kustomization: rendered with kustomize or kubectl when either is installed,
    otherwise its resource list must name exactly the manifests beside it (all but
    secret.example.yaml, which must stay out);
  - the pod spec's rules: non-root, read-only root, no privilege escalation, no
    capabilities, RuntimeDefault seccomp, resources, a grace period longer than the
    10 s drain, LOG_FORMAT=json, secrets only through secretKeyRef to keys the example
    Secret holds;
  - every environment variable against the `--help` of the binary the container runs;
  - each probe's port against the container's ports and the listen address it sets;
  - then runs the pod's containers as processes (the binaries, with the example Secret's
    fake values and a SQLite file in a scratch directory; listen addresses moved to
    free loopback ports) and runs every probe against them: httpGet for 200, grpc for
    SERVING, tcpSocket for a connection. A signed webhook must be stored (so the
    adapter's token is one the core accepts), and SIGTERM must end both within the
    grace period.
  - the pod spec against the image (the Containerfile and scripts/image.sh): the pod's
    user and group are the image's USER, the SQLite claim is mounted on the image's
    data VOLUME, and every command is a binary the image holds.
Then every metric the Grafana dashboard queries must be exported by the binaries.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import grpc
import kubernetes_validate
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

# The oldest version whose schema knows every field used (grpc probes are GA in 1.27,
# policy/v1 PodDisruptionBudget in 1.21) and the newest the validator ships.
KUBERNETES_VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]
DRAIN_SECS = 10
SECRET_VARS = {
    "KAPSO_WEBHOOK_SECRET",
    "KAPSO_API_TOKEN",
    "GATEWAY_API_TOKENS",
    "GATEWAY_API_TOKEN",
    "DATABASE_URL",
}
# Which address variable a container port comes from, by command, and the binary's
# default when the manifest leaves it unset (read from --help at run time).
LISTEN_VARS = {
    "kapso-core": {"grpc": "CORE_LISTEN_ADDR", "metrics": "CORE_METRICS_ADDR"},
    "kapso-adapter": {"http": "ADAPTER_LISTEN_ADDR"},
}
WEBHOOK_BODY = (
    '{"message":{"id":"wamid.deploy-check-1","timestamp":"1730092800","type":"text",'
    '"from":"15551234567","text":{"body":"deploy check"},"kapso":{"direction":"inbound"}},'
    '"conversation":{"id":"conv_deploy_check","phone_number":"+15551234567",'
    '"phone_number_id":"123456789012345"},"phone_number_id":"123456789012345"}'
)


class Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []

    def check(self, ok: bool, what: str, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            print(f"  ok    {what}")
        else:
            self.failed.append(what)
            print(f"  FAIL  {what}" + (f": {detail}" if detail else ""))
        return ok


def load_docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def help_env_vars(binary: Path) -> tuple[set[str], dict[str, str]]:
    """The variables `--help` documents, and their defaults."""
    text = subprocess.run(
        [str(binary), "--help"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    names = set(re.findall(r"\[env: ([A-Z0-9_]+)", text))
    defaults = dict(
        re.findall(r"\[env: ([A-Z0-9_]+)[^\]]*\]\s*\[default: ([^\]]+)\]", text)
    )
    return names, defaults


def port_of(addr: str) -> int:
    return int(addr.rsplit(":", 1)[1])


# --- static checks ---------------------------------------------------------------------


def check_schema(c: Checks, files: list[Path]) -> None:
    for path in files:
        for doc in load_docs(path):
            for version in KUBERNETES_VERSIONS:
                what = f"{path.name}: {doc.get('kind')}/{doc['metadata']['name']} valid for Kubernetes {version}"
                try:
                    kubernetes_validate.validate(doc, version, strict=True)
                    c.check(True, what)
                except kubernetes_validate.ValidationError as e:
                    c.check(False, what, f"{e.message} at {'.'.join(map(str, e.path))}")
                except Exception as e:  # unknown kind or version: a failure, not a skip
                    c.check(False, what, repr(e))


def render_tool() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def check_kustomization(c: Checks, shape_dir: Path) -> list[dict]:
    """Checks the kustomization; returns the resources it deploys."""
    kust = yaml.safe_load((shape_dir / "kustomization.yaml").read_text())
    c.check(
        kust.get("apiVersion") == "kustomize.config.k8s.io/v1beta1"
        and kust.get("kind") == "Kustomization",
        "kustomization.yaml is a kustomize.config.k8s.io/v1beta1 Kustomization",
    )
    listed = kust.get("resources", [])
    beside = sorted(
        p.name
        for p in shape_dir.glob("*.yaml")
        if p.name not in ("kustomization.yaml", "secret.example.yaml")
    )
    c.check(
        sorted(listed) == beside,
        "kustomization lists exactly the manifests beside it",
        f"listed {sorted(listed)}, files {beside}",
    )
    c.check(
        "secret.example.yaml" not in listed,
        "secret.example.yaml stays out of the kustomization",
    )
    tool = render_tool()
    if tool:
        out = subprocess.run(
            tool + [str(shape_dir)], capture_output=True, text=True, timeout=60
        )
        c.check(out.returncode == 0, f"{' '.join(tool)} renders", out.stderr.strip())
        docs = [d for d in yaml.safe_load_all(out.stdout) if d]
        for doc in docs:
            for version in KUBERNETES_VERSIONS:
                try:
                    kubernetes_validate.validate(doc, version, strict=True)
                    c.check(True, f"rendered {doc['kind']}/{doc['metadata']['name']} valid for {version}")
                except Exception as e:
                    c.check(False, f"rendered {doc['kind']}/{doc['metadata']['name']} valid for {version}", str(e))
        return docs
    print("  note  neither kustomize nor kubectl is installed: the resource list is checked")
    print("        and each listed file validated, instead of a render")
    docs = []
    for name in listed:
        path = shape_dir / name
        if c.check(path.is_file(), f"listed resource {name} exists"):
            docs.extend(load_docs(path))
    return docs


def check_pod_rules(c: Checks, deployment: dict, secret_keys: set[str], listed: list[dict]) -> None:
    name = deployment["metadata"]["name"]
    pod = deployment["spec"]["template"]["spec"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    grace = pod.get("terminationGracePeriodSeconds", 30)
    c.check(grace > DRAIN_SECS, f"{name}: terminationGracePeriodSeconds {grace} > the {DRAIN_SECS} s drain")
    psc = pod.get("securityContext", {})
    c.check(
        psc.get("runAsNonRoot") is True
        and isinstance(psc.get("runAsUser"), int)
        and psc["runAsUser"] > 0
        and psc.get("seccompProfile", {}).get("type") == "RuntimeDefault",
        f"{name}: pod runs as a numeric non-root user with RuntimeDefault seccomp",
    )
    for kind in ("Service", "PodDisruptionBudget"):
        for doc in (d for d in listed if d["kind"] == kind):
            selector = doc["spec"]["selector"]
            selector = selector.get("matchLabels", selector)
            c.check(
                all(labels.get(k) == v for k, v in selector.items()),
                f"{kind}/{doc['metadata']['name']} selects the pods",
                f"selector {selector}, pod labels {labels}",
            )
    for ctr in pod["containers"]:
        cname = f"{name}/{ctr['name']}"
        sc = ctr.get("securityContext", {})
        c.check(
            sc.get("allowPrivilegeEscalation") is False
            and sc.get("readOnlyRootFilesystem") is True
            and sc.get("capabilities", {}).get("drop") == ["ALL"],
            f"{cname}: read-only root, no privilege escalation, capabilities dropped",
        )
        res = ctr.get("resources", {})
        c.check(
            "memory" in res.get("requests", {}) and "memory" in res.get("limits", {})
            and "cpu" in res.get("requests", {}),
            f"{cname}: cpu and memory requests, memory limit",
        )
        c.check(ctr.get("image", "").startswith("kapso-gateway:"), f"{cname}: image kapso-gateway")
        env = env_of(ctr)
        c.check(env.get("LOG_FORMAT", {}).get("value") == "json", f"{cname}: LOG_FORMAT=json")
        for var, e in env.items():
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            inline_ok = var == "DATABASE_URL" and str(e.get("value", "")).startswith("sqlite://")
            if var in SECRET_VARS and not inline_ok:
                c.check(ref is not None, f"{cname}: {var} comes from a Secret", "set inline")
            if ref:
                c.check(
                    ref["key"] in secret_keys,
                    f"{cname}: secret key {ref['name']}/{ref['key']} is in secret.example.yaml",
                )


def check_shape(c: Checks, shape: str, deployment: dict, listed: list[dict]) -> None:
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    core = next(ctr for ctr in pod["containers"] if ctr["command"][0] == "kapso-core")
    adapter = next(ctr for ctr in pod["containers"] if ctr["command"][0] == "kapso-adapter")
    core_env, adapter_env = env_of(core), env_of(adapter)
    c.check(
        adapter_env.get("CORE_GRPC_URL", {}).get("value") == "http://127.0.0.1:50051"
        and core_env.get("CORE_LISTEN_ADDR", {}).get("value", "").endswith(":50051"),
        f"{shape}: the adapter reaches its own core over the pod's loopback",
    )
    c.check(
        "GATEWAY_API_TOKENS" in core_env and "GATEWAY_API_TOKEN" in adapter_env,
        f"{shape}: the core requires tokens (it listens beyond loopback) and the adapter sends one",
    )
    kinds = sorted(d["kind"] for d in listed)
    if shape == "sqlite":
        c.check(spec.get("replicas") == 1, "sqlite: replicas 1 (one writer per file)")
        c.check(spec.get("strategy", {}).get("type") == "Recreate", "sqlite: strategy Recreate")
        url = core_env.get("DATABASE_URL", {}).get("value", "")
        mounts = [m["mountPath"] for m in core.get("volumeMounts", [])
                  if any(v["name"] == m["name"] and "persistentVolumeClaim" in v for v in pod.get("volumes", []))]
        claims = {v["persistentVolumeClaim"]["claimName"] for v in pod.get("volumes", []) if "persistentVolumeClaim" in v}
        c.check(
            any(url.startswith(f"sqlite://{m.rstrip('/')}/") for m in mounts),
            f"sqlite: DATABASE_URL {url} lies on the PersistentVolumeClaim's mount {mounts}",
        )
        c.check(
            claims <= {d["metadata"]["name"] for d in listed if d["kind"] == "PersistentVolumeClaim"} and claims,
            f"sqlite: the claim {sorted(claims)} is part of the kustomization",
        )
    elif shape == "postgres":
        c.check(spec.get("replicas", 1) >= 2, f"postgres: several replicas ({spec.get('replicas')})")
        c.check("PodDisruptionBudget" in kinds, "postgres: a PodDisruptionBudget")
        c.check(
            "secretKeyRef" in core_env.get("DATABASE_URL", {}).get("valueFrom", {}),
            "postgres: DATABASE_URL from the Secret",
        )
        service_ports = {(d["metadata"]["name"], p["port"]) for d in listed if d["kind"] == "Service"
                         for p in d["spec"]["ports"]}
        c.check(any(port == 8000 for _, port in service_ports) and any(port == 50051 for _, port in service_ports),
                f"postgres: Services for the webhook (8000) and the gRPC API (50051): {sorted(service_ports)}")


def image_spec(repo: Path) -> dict:
    """The user, data volume and binaries of the image, as the Containerfile and
    scripts/image.sh define them; None for what they do not say."""
    containerfile = (repo / "Containerfile").read_text()
    user = re.search(r"^USER (\d+):(\d+)\s*$", containerfile, re.M)
    volume = re.search(r'^VOLUME \["([^"]+)"\]\s*$', containerfile, re.M)
    binaries = re.search(r"^BINARIES=\(([^)]*)\)\s*$", (repo / "scripts/image.sh").read_text(), re.M)
    return {
        "uid": int(user.group(1)) if user else None,
        "gid": int(user.group(2)) if user else None,
        "volume": volume.group(1) if volume else None,
        "binaries": set(binaries.group(1).split()) if binaries else set(),
    }


def check_image(c: Checks, shape: str, deployment: dict, image: dict) -> None:
    pod = deployment["spec"]["template"]["spec"]
    psc = pod.get("securityContext", {})
    c.check(
        image["uid"] is not None
        and (psc.get("runAsUser"), psc.get("runAsGroup")) == (image["uid"], image["gid"]),
        f"{shape}: the pod runs as the image's user {image['uid']}:{image['gid']}",
        f"runAsUser {psc.get('runAsUser')}, runAsGroup {psc.get('runAsGroup')}",
    )
    claims = {v["name"] for v in pod.get("volumes", []) if "persistentVolumeClaim" in v}
    for ctr in pod["containers"]:
        cname = f"{shape}/{ctr['name']}"
        c.check(
            ctr["command"][0] in image["binaries"],
            f"{cname}: command {ctr['command'][0]} is a binary of the image",
            f"the image holds {sorted(image['binaries'])}",
        )
        for mount in ctr.get("volumeMounts", []):
            if mount["name"] in claims:
                c.check(
                    mount["mountPath"] == image["volume"],
                    f"{cname}: the claim is mounted on the image's data volume {image['volume']}",
                    mount["mountPath"],
                )
                c.check(
                    psc.get("fsGroup") == image["gid"],
                    f"{cname}: fsGroup {psc.get('fsGroup')} lets the image's user write the claim",
                )


def check_env_and_ports(c: Checks, deployment: dict, helps: dict) -> None:
    name = deployment["metadata"]["name"]
    for ctr in deployment["spec"]["template"]["spec"]["containers"]:
        cname = f"{name}/{ctr['name']}"
        command = ctr["command"][0]
        if not c.check(command in LISTEN_VARS, f"{cname}: command {command} is a gateway binary"):
            continue
        known, defaults = helps[command]
        env = env_of(ctr)
        for var in env:
            c.check(var in known, f"{cname}: {var} is a variable of {command} (--help)")
        ports = {p["name"]: p["containerPort"] for p in ctr.get("ports", [])}
        for port_name, var in LISTEN_VARS[command].items():
            addr = env.get(var, {}).get("value", defaults.get(var, ""))
            c.check(
                port_name in ports and ":" in addr and port_of(addr) == ports[port_name],
                f"{cname}: port {port_name} {ports.get(port_name)} is the one {var}={addr} binds",
            )
            c.check(
                addr.startswith("0.0.0.0:") or addr.startswith("[::]:"),
                f"{cname}: {var} listens on every interface (probes dial the pod IP)",
                addr,
            )
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            probe = ctr.get(kind)
            if probe is None:
                continue
            for handler in ("httpGet", "tcpSocket", "grpc"):
                if handler in probe:
                    port = probe[handler]["port"]
                    number = ports.get(port, port)
                    c.check(
                        number in ports.values(),
                        f"{cname}: {kind} {handler} port {port} is a declared container port",
                    )


# --- the pod as processes --------------------------------------------------------------


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


def grpc_health(addr: str, service: str) -> str:
    with grpc.insecure_channel(addr) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=2
            )
            return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.RpcError as e:
            return f"error {e.code().name}"


def tcp_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def until(probe, procs, deadline_secs: float = 20.0):
    """Runs probe until it returns (True, detail), the deadline passes or a process exits."""
    end = time.monotonic() + deadline_secs
    while True:
        ok, detail = probe()
        if ok:
            return ok, detail
        exited = [f"{name} exited {proc.returncode}: {tail(log)}" for name, proc, log in procs
                  if proc.poll() is not None]
        if exited:
            return False, f"{detail}; " + "; ".join(exited)
        if time.monotonic() > end:
            return False, detail
        time.sleep(0.25)


def tail(log: Path, lines: int = 3) -> str:
    return " | ".join(log.read_text(errors="replace").strip().splitlines()[-lines:])


def run_pod(c: Checks, shape: str, deployment: dict, secret: dict, bin_dir: Path, scratch: Path) -> set[str]:
    """Starts the pod's containers as processes, runs their probes, sends a webhook,
    scrapes the metrics and stops them with SIGTERM. Returns the exported metric names."""
    pod = deployment["spec"]["template"]["spec"]
    grace = pod.get("terminationGracePeriodSeconds", 30)
    containers = pod["containers"]
    # Every manifest port moves to a free loopback port; probes follow the same map.
    port_map: dict[int, int] = {}
    for ctr in containers:
        for p in ctr.get("ports", []):
            port_map[p["containerPort"]] = free_port()
    db = scratch / f"{shape}.db"
    procs: list[tuple[str, subprocess.Popen, Path]] = []
    names: set[str] = set()
    try:
        for ctr in containers:
            env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "TMPDIR")}
            for var, e in env_of(ctr).items():
                if "value" in e:
                    value = str(e["value"])
                else:
                    value = secret[e["valueFrom"]["secretKeyRef"]["key"]]
                if var == "DATABASE_URL":
                    value = f"sqlite://{db}"
                if re.fullmatch(r"(0\.0\.0\.0|127\.0\.0\.1):\d+", value):
                    value = f"127.0.0.1:{port_map.get(port_of(value), port_of(value))}"
                m = re.fullmatch(r"http://127\.0\.0\.1:(\d+)", value)
                if m:
                    value = f"http://127.0.0.1:{port_map[int(m.group(1))]}"
                env[var] = value
            log = scratch / f"{shape}-{ctr['name']}.log"
            binary = bin_dir / ctr["command"][0]
            proc = subprocess.Popen(
                [str(binary), *ctr.get("args", [])], env=env, cwd=scratch,
                stdout=log.open("w"), stderr=subprocess.STDOUT,
            )
            procs.append((ctr["name"], proc, log))

        for ctr in containers:
            ports = {p["name"]: p["containerPort"] for p in ctr.get("ports", [])}
            for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                probe = ctr.get(kind)
                if probe is None:
                    continue
                what = f"{shape}: {ctr['name']} {kind}"
                handler = next((h for h in ("httpGet", "grpc", "tcpSocket") if h in probe), None)
                declared = probe[handler]["port"] if handler else None
                if not c.check(ports.get(declared, declared) in port_map,
                               f"{what} port {declared} is one the pod declares"):
                    continue
                if "httpGet" in probe:
                    h = probe["httpGet"]
                    port = port_map[ports.get(h["port"], h["port"])]
                    url = f"http://127.0.0.1:{port}{h['path']}"
                    ok, detail = until(lambda: ((r := http_get(url))[0] == 200, r), procs)
                    c.check(ok, f"{what} GET {h['path']} answers 200", str(detail))
                elif "grpc" in probe:
                    g = probe["grpc"]
                    addr = f"127.0.0.1:{port_map[g['port']]}"
                    service = g.get("service", "")
                    ok, detail = until(lambda: ((s := grpc_health(addr, service)) == "SERVING", s), procs)
                    c.check(ok, f"{what} grpc.health.v1 Check({service!r}) is SERVING", detail)
                elif "tcpSocket" in probe:
                    t = probe["tcpSocket"]
                    port = port_map[ports.get(t["port"], t["port"])]
                    ok, detail = until(lambda: (tcp_open(port), "refused"), procs)
                    c.check(ok, f"{what} tcpSocket connects", detail)
                else:
                    c.check(False, f"{what} has a handler this check knows", str(probe))

        adapter = next(ctr for ctr in containers if ctr["command"][0] == "kapso-adapter")
        core = next(ctr for ctr in containers if ctr["command"][0] == "kapso-core")
        web = port_map[{p["name"]: p["containerPort"] for p in adapter["ports"]}["http"]]
        metrics = port_map[{p["name"]: p["containerPort"] for p in core["ports"]}["metrics"]]
        webhook_secret = secret["KAPSO_WEBHOOK_SECRET"].split(",")[0]
        status, body = post_webhook(web, webhook_secret)
        c.check(
            status == 200 and '"events":1' in body.replace(" ", ""),
            f"{shape}: a signed webhook is stored (the adapter's token is accepted by the core)",
            f"{status} {body}",
        )
        status, body = post_webhook(web, "not-the-secret")
        c.check(status == 401, f"{shape}: a badly signed webhook gets 401", f"{status} {body}")
        for where, port in (("adapter", web), ("core", metrics)):
            status, text = http_get(f"http://127.0.0.1:{port}/metrics")
            c.check(status == 200, f"{shape}: {where} GET /metrics answers 200", str(status))
            names |= exported_names(text)

        for cname, proc, log in procs:
            proc.send_signal(signal.SIGTERM)
        for cname, proc, log in procs:
            try:
                code = proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                code = None
            c.check(
                code == 0,
                f"{shape}: {cname} exits 0 on SIGTERM within {grace} s",
                f"exit {code}; log {log}",
            )
    finally:
        for _, proc, _ in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return names


def post_webhook(port: int, secret: str) -> tuple[int, str]:
    body = WEBHOOK_BODY.encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/whatsapp/webhook",
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-Webhook-Event": "whatsapp.message.received",
            "X-Webhook-Signature": signature,
            "X-Idempotency-Key": str(uuid.uuid4()),
            "X-Webhook-Payload-Version": "v2",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


def exported_names(text: str) -> set[str]:
    """Sample names in an exposition, and the names each declared family may have
    (a counter's `_total`, a histogram's `_bucket`, `_sum`, `_count`), so a series
    that appears only after some event (a consumer's ack) still counts."""
    names = set()
    for line in text.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if m:
            family, kind = m.groups()
            suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
            names.update(family + s for s in suffixes.get(kind, [""]))
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, 1)[0])
    return names


# --- the dashboard ----------------------------------------------------------------------


def dashboard_exprs(dashboard: dict) -> list[tuple[str, str]]:
    found = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                found.append((p.get("title", "?"), t.get("expr", "")))
            walk(p.get("panels", []))

    walk(dashboard.get("panels", []))
    return found


def check_dashboard(c: Checks, path: Path, exported: set[str]) -> None:
    dashboard = json.loads(path.read_text())
    c.check(dashboard.get("schemaVersion", 0) >= 36, f"{path.name}: schemaVersion {dashboard.get('schemaVersion')}")
    variables = dashboard.get("templating", {}).get("list", [])
    c.check(
        any(v.get("type") == "datasource" and v.get("query") == "prometheus" and v.get("name") == "datasource"
            for v in variables),
        f"{path.name}: a Prometheus datasource variable named datasource",
    )
    exprs = dashboard_exprs(dashboard)
    c.check(bool(exprs), f"{path.name}: has queries", "none found")
    queried: dict[str, list[str]] = {}
    for title, expr in exprs:
        for name in re.findall(r"\b(kapso_[a-z0-9_]+)\b", expr):
            queried.setdefault(name, []).append(title)
    for panel in (p for p in dashboard["panels"] if p.get("type") != "row"):
        c.check(
            panel.get("datasource", {}).get("uid") == "${datasource}"
            and all(t.get("datasource", {}).get("uid") == "${datasource}" for t in panel.get("targets", [])),
            f"{path.name}: panel '{panel.get('title')}' uses the datasource variable",
        )
    for name, titles in sorted(queried.items()):
        c.check(
            name in exported,
            f"dashboard metric {name} is exported by the binaries",
            f"queried by {sorted(set(titles))}",
        )


# --- main --------------------------------------------------------------------------------


def self_test(c: Checks) -> None:
    """The validator must refuse a bad manifest, or every 'valid' above means nothing."""
    bad = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"ports": [{"port": "eighty"}], "unknownField": True},
    }
    try:
        kubernetes_validate.validate(bad, KUBERNETES_VERSIONS[-1], strict=True)
        c.check(False, "the schema validator refuses a malformed Service")
    except kubernetes_validate.ValidationError:
        c.check(True, "the schema validator refuses a malformed Service")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--bin-dir", type=Path, required=True)
    args = parser.parse_args()
    repo, bin_dir = args.repo, args.bin_dir
    c = Checks()

    helps = {}
    for command in LISTEN_VARS:
        binary = bin_dir / command
        if not binary.is_file() or not os.access(binary, os.X_OK):
            print(f"deploy checks: FAILED: no executable {binary}", file=sys.stderr)
            return 1
        helps[command] = help_env_vars(binary)

    print("== schema validator")
    self_test(c)
    image = image_spec(repo)
    exported: set[str] = set()
    scratch = Path(tempfile.mkdtemp(prefix="kapso-deploy-check."))
    shapes = sorted(p for p in (repo / "deploy/kubernetes").iterdir() if p.is_dir())
    c.check([p.name for p in shapes] == ["postgres", "sqlite"], "shapes: postgres and sqlite",
            str([p.name for p in shapes]))
    for shape_dir in shapes:
        shape = shape_dir.name
        print(f"== {shape}: schema")
        check_schema(c, [p for p in sorted(shape_dir.glob("*.yaml")) if p.name != "kustomization.yaml"])
        print(f"== {shape}: kustomization")
        listed = check_kustomization(c, shape_dir)
        secret_docs = load_docs(shape_dir / "secret.example.yaml")
        secret = secret_docs[0].get("stringData", {})
        c.check(
            all("not-real" in v for k, v in secret.items()),
            f"{shape}: secret.example.yaml holds only obviously fake values",
        )
        # Each entry is TOKEN or TOKEN=SCOPE+SCOPE; no scope means every scope.
        entries = [e.split("=", 1) for e in secret.get("GATEWAY_API_TOKENS", "").split(",")]
        scopes = {e[0]: (e[1].split("+") if len(e) == 2 else ["ingest"]) for e in entries}
        c.check("ingest" in scopes.get(secret.get("GATEWAY_API_TOKEN"), []),
                f"{shape}: the example adapter token is one of GATEWAY_API_TOKENS, with the ingest scope")
        deployments = [d for d in listed if d["kind"] == "Deployment"]
        if not c.check(len(deployments) == 1, f"{shape}: one Deployment", str(len(deployments))):
            continue
        deployment = deployments[0]
        print(f"== {shape}: pod rules")
        check_pod_rules(c, deployment, set(secret), listed)
        check_shape(c, shape, deployment, listed)
        print(f"== {shape}: against the image (Containerfile, scripts/image.sh)")
        check_image(c, shape, deployment, image)
        print(f"== {shape}: environment and ports against the binaries in {bin_dir}")
        check_env_and_ports(c, deployment, helps)
        print(f"== {shape}: the pod's containers run, probed as the kubelet would")
        try:
            exported |= run_pod(c, shape, deployment, secret, bin_dir, scratch)
        except Exception as e:  # a malformed manifest: counted, and the next shape still runs
            c.check(False, f"{shape}: the pod runs", repr(e))

    print("== grafana dashboard")
    check_dashboard(c, repo / "deploy/grafana/kapso-gateway.json", exported)

    if c.failed:
        print(f"logs kept in {scratch}")
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"deploy checks: {c.passed} passed, {len(c.failed)} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
