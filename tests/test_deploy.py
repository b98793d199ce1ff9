"""deploy/: the Kubernetes manifests against the Kubernetes schemas (offline, kubernetes-validate),
and every file's settings against what the daemon, vLLM and the launch profiles really use."""

from __future__ import annotations

import configparser
import re
import shlex
import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from prometheus_client import generate_latest

from engine.config import build_settings, read_config_file
from engine.endpoints.replicas import SESSION_HEADER
from lsp.cli import parser
from lsp.serve.metrics import DaemonMetrics
from tests.conftest import VllmEndpoint
from tests.support.vllm_metrics import vllm_samples

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
KUBERNETES_VERSION = "1.37.0"
# Kinds whose schemas are not Kubernetes' own (KEDA's CRD): checked by hand below.
CUSTOM_KINDS = {("keda.sh/v1alpha1", "ScaledObject")}


def manifests() -> list[tuple[Path, dict]]:
    found = []
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        found += [(path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def test_every_core_manifest_passes_the_kubernetes_schema_strictly():
    checked = []
    for path, doc in manifests():
        if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        checked.append(f"{path.name}:{doc['kind']}")
    kinds = {entry.split(":")[1] for entry in checked}
    assert {"Deployment", "Service", "ConfigMap", "PersistentVolumeClaim"} <= kinds


def test_a_broken_manifest_is_caught():
    (_, deployment) = next((p, d) for p, d in manifests() if d["kind"] == "Deployment")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = [
        7071
    ]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_daemon_deployment_uses_its_real_flags_config_and_health_port():
    docs = {doc["kind"]: doc for _, doc in manifests()}
    container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    options = parser().parse_args(container["args"])
    assert options.serve and options.workers >= 2 and options.tls_cert
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports["websocket"] == options.ws_port and ports["lsp"] == options.port
    probe = container["readinessProbe"]["httpGet"]
    assert probe["path"] == "/healthz" and probe["scheme"] == "HTTPS"  # TLS: --tls-cert
    annotations = docs["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(options.ws_port)
    # The mounted config is a valid daemon config that sends everything to a router.
    settings = build_settings(tomllib.loads(docs["ConfigMap"]["data"]["server.toml"]))
    assert settings.instruct.router and settings.reasoning.router
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert str(options.config) in mounts and str(Path(options.tokens).parent) in mounts


async def test_the_autoscaler_queries_metrics_that_exist(vllm: VllmEndpoint):
    (scaled,) = [d for _, d in manifests() if d["kind"] == "ScaledObject"]
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["kind"] == "Deployment"
    assert 1 <= spec["minReplicaCount"] < spec["maxReplicaCount"]
    queries = [trigger["metadata"]["query"] for trigger in spec["triggers"]]
    assert all(trigger["type"] == "prometheus" for trigger in spec["triggers"])
    names = {re.match(r"sum\(([a-z_:]+)", query).group(1) for query in queries}  # type: ignore[union-attr]
    assert names == {"vllm:num_requests_waiting", "iquest_actions_queued"}
    vllm_side = await vllm_samples(vllm.root_url)
    assert "vllm:num_requests_waiting" in vllm_side
    metrics_text = (await _raw_metrics(vllm.root_url)).splitlines()
    waiting = [line for line in metrics_text if line.startswith("vllm:num_requests_waiting{")]
    assert waiting and 'model_name="' in waiting[0]  # the label the query filters on
    ours = generate_latest(DaemonMetrics().registry).decode()
    assert "iquest_actions_queued" in ours


async def _raw_metrics(root: str) -> str:
    import httpx

    async with httpx.AsyncClient(timeout=5) as client:
        return (await client.get(f"{root}/metrics")).text


def test_helm_values_route_by_session_and_match_the_completion_profile():
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    router = values["routerSpec"]
    assert router["routingLogic"] == "session"
    assert router["sessionKey"] == SESSION_HEADER.lower()
    profile = read_config_file(
        Path(__file__).resolve().parents[1] / "prompts" / "vllm" / "profiles.toml"
    )["completion"]
    (engine,) = values["servingEngineSpec"]["modelSpec"]
    config = engine["vllmConfig"]
    assert config["enablePrefixCaching"] is True
    assert config["maxModelLen"] == profile["max_model_len"]
    assert config["maxNumSeqs"] == profile["max_num_seqs"]
    assert config["gpuMemoryUtilization"] == profile["gpu_memory_utilization"]
    args = config["extraArgs"]
    assert "--scheduling-policy=priority" in args
    assert "--enable-prompt-tokens-details" in args
    assert f"--max-num-batched-tokens={profile['max_num_batched_tokens']}" in args


def test_systemd_unit_and_container_image_start_the_daemon_with_valid_flags():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read_string((DEPLOY / "systemd" / "iquest-lsp.service").read_text())
    command = shlex.split(unit["Service"]["ExecStart"].replace("\\\n", " "))
    assert command[0].endswith("/iquest-lsp")
    options = parser().parse_args(command[1:])
    assert options.serve and options.tokens and options.tls_key
    assert unit["Service"]["KillSignal"] == "SIGINT"
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*?\])$", dockerfile, re.MULTILINE | re.DOTALL)
    assert cmd is not None
    options = parser().parse_args(yaml.safe_load(cmd.group(1).replace("\\\n", " ")))
    assert options.serve and options.config


def test_every_relative_link_in_the_documentation_resolves():
    """deploy/README.md linked ../prometheus.yml and ../grafana/, which do not exist (issue 25)."""
    broken = []
    for document in [REPO / "README.md", *REPO.glob("*/README.md"), *REPO.glob("*/*/README.md")]:
        text = document.read_text(encoding="utf-8")
        # Markdown links, and paths in code spans that climb out of the document's folder.
        targets = re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r"`(\.\./[^`\s]+)`", text)
        for target in targets:
            if "://" in target or target.startswith(("#", "mailto:")):
                continue
            path = (document.parent / target.split("#")[0]).resolve()
            if not path.is_relative_to(REPO):
                continue  # the workplace's notes beside the checkout, not the project's
            if not path.exists():
                broken.append(f"{document.relative_to(REPO)}: {target}")
    assert not broken


def test_the_dashboard_shows_the_daemons_own_metrics_including_the_action_queue():
    import json

    dashboard = json.loads((REPO / "deploy" / "grafana" / "iquest-lsp.json").read_text())
    queries = " ".join(t["expr"] for p in dashboard["panels"] for t in p.get("targets", []))
    used = set(re.findall(r"\biquest_[a-z_]+", queries))
    scraped = DaemonMetrics().scrape().decode()
    assert {"iquest_actions_queued", "iquest_actions_running", "iquest_open_sockets"} <= used
    for name in used:
        assert re.search(rf"^# TYPE {name.removesuffix('_bucket')} ", scraped, re.M) or (
            f"{name} " in scraped or f"{name}{{" in scraped
        ), name
    readme = (REPO / "deploy" / "README.md").read_text()
    assert "Import" in readme and "grafana/iquest-lsp.json" in readme
