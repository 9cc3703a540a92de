"""The Helm chart infra/helm/smartcity/, linted and rendered by the real Helm, with default and production values.

Helm v4 is built from its Go module into the cache (smartcity.stack.helm; minutes the first time, then cached).
Every rendered document is parsed and checked: every function of stack.yml is there in both modes (Knative, or
Deployment + Service + HPA); every ConfigMap, Secret, ServiceAccount and PVC a workload references, and every
object a KafkaSource, HPA or PDB points at, is rendered by the chart; Deployments roll with ``maxUnavailable: 0``
behind readiness probes. Every document is validated offline: the Kubernetes kinds against the API's OpenAPI v3
documents (k8s.io/kubernetes), Knative Services against Knative Serving's CRD (knative.dev/serving), both from the
Go module proxy; unknown fields fail (as kubeconform's strict mode). The CRDs of Knative Eventing (KafkaSource,
KafkaSink) and of the Spark operator (SparkApplication) are not on the proxy here (403), so those kinds get a check
of the fields their controllers require only.
"""

from __future__ import annotations

import json
import subprocess
from functools import cache
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import pytest
import yaml

from smartcity.runtime import knative
from smartcity.runtime.stackfile import read_stack
from smartcity.settings import PROJECT_ROOT, Settings, get_settings
from smartcity.stack.helm import KNATIVE_SERVING_MODULE, KUBERNETES_MODULE, go_module_dir, install_helm

CHART = PROJECT_ROOT / "infra" / "helm" / "smartcity"
VALUE_SETS = {"default": [], "production": ["-f", str(CHART / "values-production.yaml")]}
NAMESPACE = "smartcity"
WORKLOAD_KINDS = {"Deployment", "CronJob", "Service"}  # Service: Knative's, which carries a pod template
PRODUCTION_SETTINGS = set(yaml.safe_load((CHART / "values-production.yaml").read_text())["settings"])
# No CRD schema on the Go module proxy for these: the fields their controllers require are checked instead.
SPARK_REQUIRED_FIELDS = ["spec.type", "spec.mode", "spec.image", "spec.mainApplicationFile", "spec.sparkVersion",
                         "spec.driver.serviceAccount", "spec.executor.instances"]
UNVALIDATED_KINDS = {"KafkaSource", "KafkaSink", "SparkApplication"}
# The first run builds Helm (4.5 minutes here) and downloads k8s.io/kubernetes from the proxy; later runs take seconds.
pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(scope="module")
def helm() -> Path:
    return install_helm(get_settings())


def _helm(helm: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def rendered(helm) -> dict[str, list[dict[str, Any]]]:
    documents = {}
    for name, options in VALUE_SETS.items():
        result = _helm(helm, "template", "smartcity", str(CHART), "--namespace", NAMESPACE, *options)
        assert result.returncode == 0, result.stderr
        documents[name] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return documents


def _names(documents: list[dict], kind: str, api_version: str | None = None) -> set[str]:
    return {doc["metadata"]["name"] for doc in documents
            if doc["kind"] == kind and api_version in (None, doc["apiVersion"])}


def _pod_spec(document: dict) -> dict | None:
    kind, spec = document["kind"], document.get("spec", {})
    if kind == "Deployment" or (kind == "Service" and document["apiVersion"].startswith("serving.knative.dev")):
        return spec["template"]["spec"]
    if kind == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]
    if kind == "SparkApplication":
        return _spark_pod_spec(document)
    return None


def _spark_pod_spec(document: dict) -> dict:
    """A SparkApplication's driver and executors as one pod spec: volumes, containers, the driver's account."""
    spec = document["spec"]
    return {"serviceAccountName": spec["driver"]["serviceAccount"], "volumes": spec.get("volumes", []),
            "containers": [spec["driver"], spec["executor"]]}


def _references(pod: dict) -> Iterator[tuple[str, str]]:
    """(kind, name) of every ConfigMap, Secret, ServiceAccount and PVC a pod spec refers to."""
    if "serviceAccountName" in pod:
        yield "ServiceAccount", pod["serviceAccountName"]
    for container in pod.get("containers", []) + pod.get("initContainers", []):
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                yield "ConfigMap", source["configMapRef"]["name"]
            if "secretRef" in source:
                yield "Secret", source["secretRef"]["name"]
        for variable in container.get("env", []):
            for ref_kind, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                if ref := variable.get("valueFrom", {}).get(ref_kind):
                    yield kind, ref["name"]
    for volume in pod.get("volumes", []):
        if "secret" in volume:
            yield "Secret", volume["secret"]["secretName"]
        if "configMap" in volume:
            yield "ConfigMap", volume["configMap"]["name"]
        if "persistentVolumeClaim" in volume:
            yield "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]
        for source in volume.get("projected", {}).get("sources", []):
            for kind in ("secret", "configMap"):
                if kind in source:
                    yield kind[0].upper() + kind[1:], source[kind]["name"]


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_helm_lint(helm, value_set):
    result = _helm(helm, "lint", "--strict", str(CHART), "--namespace", NAMESPACE, *VALUE_SETS[value_set])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_reference_of_a_workload_is_rendered(rendered, value_set):
    documents = rendered[value_set]
    workloads = [(doc, pod) for doc in documents if (pod := _pod_spec(doc)) is not None]
    assert workloads
    for document, pod in workloads:
        references = set(_references(pod))
        where = f"{document['kind']} {document['metadata']['name']}"
        # One ConfigMap and one Secret for all: every workload takes the settings and the secret files.
        assert {("ConfigMap", "smartcity-settings"), ("Secret", "smartcity-secrets")} <= references, where
        for kind, name in references:
            assert name in _names(documents, kind), f"{where} refers to {kind} {name}, which the chart does not render"


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_pointer_between_resources_resolves(rendered, value_set):
    documents = rendered[value_set]
    for source in (doc for doc in documents if doc["kind"] == "KafkaSource"):
        sink, dead_letter = source["spec"]["sink"]["ref"], source["spec"]["delivery"]["deadLetterSink"]["ref"]
        assert sink["name"] in _names(documents, "Service", sink["apiVersion"]), source["metadata"]["name"]
        assert dead_letter["name"] in _names(documents, "KafkaSink"), source["metadata"]["name"]
    deployments = {doc["metadata"]["name"]: doc for doc in documents if doc["kind"] == "Deployment"}
    for hpa in (doc for doc in documents if doc["kind"] == "HorizontalPodAutoscaler"):
        assert hpa["spec"]["scaleTargetRef"]["name"] in deployments
    for binding in (doc for doc in documents if doc["kind"] == "RoleBinding"):
        assert binding["roleRef"]["name"] in _names(documents, "Role")
        assert {subject["name"] for subject in binding["subjects"]} <= _names(documents, "ServiceAccount")
    for budget in (doc for doc in documents if doc["kind"] == "PodDisruptionBudget"):
        selector = budget["spec"]["selector"]["matchLabels"]
        pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in deployments.values()]
        assert any(selector.items() <= labels.items() for labels in pod_labels), budget["metadata"]["name"]


def test_every_function_is_rendered_in_both_modes(rendered):
    _, specs = read_stack(PROJECT_ROOT / "stack.yml")
    functions = {spec.name for spec in specs}
    kafka_functions = {spec.name for spec in specs if spec.topics}
    default, production = rendered["default"], rendered["production"]
    assert _names(default, "Service", knative.SERVICE_API) == functions
    assert not _names(default, "Deployment") and not _names(default, "HorizontalPodAutoscaler")
    assert _names(production, "Deployment") == functions
    assert _names(production, "Service", "v1") == functions
    assert _names(production, "HorizontalPodAutoscaler") == functions
    assert _names(production, "PodDisruptionBudget") == functions
    assert not _names(production, "Service", knative.SERVICE_API)
    for documents in (default, production):
        sources = [doc for doc in documents if doc["kind"] == "KafkaSource"]
        assert {doc["spec"]["sink"]["ref"]["name"] for doc in sources} == kafka_functions
        assert _names(documents, "CronJob") == {"models-training", "backup"}
        assert _names(documents, "SparkApplication") == {"smartcity-streaming"}


def test_the_backup_cronjob_backs_up_into_a_bucket_apart_and_kafka_replicates_in_production(rendered):
    for name, documents in rendered.items():
        backup = next(doc for doc in documents if doc["kind"] == "CronJob" and doc["metadata"]["name"] == "backup")
        assert backup["spec"]["concurrencyPolicy"] == "Forbid"
        (container,) = backup["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        assert container["command"] == ["smartcity", "backup", "schedule", "--once"]
        settings = next(doc for doc in documents if doc["kind"] == "ConfigMap"
                        and doc["metadata"]["name"] == "smartcity-settings")["data"]
        assert settings["SMARTCITY_BACKUP_URL"].rsplit("/", 1)[1] != settings["SMARTCITY_OBJECTS_URL"].rsplit("/", 1)[1]
        assert settings["SMARTCITY_KAFKA_REPLICATION_FACTOR"] == ("3" if name == "production" else "1")


def test_the_streaming_checkpoints_are_on_a_persistent_volume(rendered):
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for documents in rendered.values():
        streaming = next(doc for doc in documents if doc["kind"] == "SparkApplication")
        volumes = {volume["name"]: volume for volume in streaming["spec"]["volumes"]}
        mount = next(m for m in streaming["spec"]["driver"]["volumeMounts"] if m["mountPath"] == "/checkpoints")
        assert mount["mountPath"] == values["settings"]["streaming_checkpoint_dir"]
        claim = volumes[mount["name"]]["persistentVolumeClaim"]["claimName"]
        assert claim in _names(documents, "PersistentVolumeClaim")


def test_the_streaming_metrics_are_scraped_on_the_internal_host_and_exposed_by_no_service(rendered):
    for documents in rendered.values():
        settings = next(doc for doc in documents if doc["kind"] == "ConfigMap"
                        and "SMARTCITY_INTERNAL_HOST" in doc.get("data", {}))["data"]
        assert settings["SMARTCITY_INTERNAL_HOST"] == "0.0.0.0"  # the pod's address, where Prometheus scrapes
        driver = next(doc for doc in documents if doc["kind"] == "SparkApplication")["spec"]["driver"]
        assert driver["annotations"]["prometheus.io/port"] == settings["SMARTCITY_STREAMING_METRICS_PORT"]
        exposed = {port.get("targetPort", port["port"]) for doc in documents if doc["kind"] == "Service"
                   and doc["apiVersion"] == "v1" for port in doc["spec"].get("ports", [])}
        assert int(settings["SMARTCITY_STREAMING_METRICS_PORT"]) not in exposed, exposed


def test_production_volumes_are_on_an_encrypted_storage_class(rendered):
    [storage_class] = [doc for doc in rendered["production"] if doc["kind"] == "StorageClass"]
    assert storage_class["parameters"]["encrypted"] == "true" and storage_class["provisioner"]
    [claim] = [doc for doc in rendered["production"] if doc["kind"] == "PersistentVolumeClaim"]
    assert claim["spec"]["storageClassName"] == storage_class["metadata"]["name"]
    assert not [doc for doc in rendered["default"] if doc["kind"] == "StorageClass"]


def test_kafka_sources_carry_the_delivery_spec_of_stack_yml(rendered):
    _, specs = read_stack(PROJECT_ROOT / "stack.yml")
    sources = {doc["metadata"]["name"]: doc for doc in rendered["production"] if doc["kind"] == "KafkaSource"}
    for spec in (spec for spec in specs if spec.topics):
        source = sources[spec.kafka_source_name]["spec"]
        assert source["topics"] == list(spec.topics)
        assert source["consumerGroup"] == spec.consumer_group
        assert len(source["bootstrapServers"]) == 3  # production's three brokers
        delivery = source["delivery"]
        assert (delivery["retry"], delivery["backoffPolicy"], delivery["backoffDelay"]) == (
            spec.delivery.retry, spec.delivery.backoff_policy, spec.delivery.backoff_delay)
        dead_letter_sink = knative.dead_letter_sink_name(spec.delivery.dead_letter_topic)
        assert delivery["deadLetterSink"]["ref"]["name"] == dead_letter_sink


def _drain_seconds(documents: list[dict]) -> float:
    """The drain delay and timeout the ConfigMap hands the functions."""
    [settings] = [doc["data"] for doc in documents
                  if doc["kind"] == "ConfigMap" and "SMARTCITY_GATEWAY_DRAIN_TIMEOUT_S" in doc.get("data", {})]
    return float(settings["SMARTCITY_GATEWAY_DRAIN_DELAY_S"]) + float(settings["SMARTCITY_GATEWAY_DRAIN_TIMEOUT_S"])


def test_deployments_roll_without_downtime_and_scale_on_cpu_and_a_custom_metric(rendered):
    documents = rendered["production"]
    for deployment in (doc for doc in documents if doc["kind"] == "Deployment"):
        strategy = deployment["spec"]["strategy"]
        assert strategy["type"] == "RollingUpdate" and strategy["rollingUpdate"]["maxUnavailable"] == 0
        pod = deployment["spec"]["template"]["spec"]
        for container in pod["containers"]:
            assert container["readinessProbe"], deployment["metadata"]["name"]
            # out of the endpoints during the preStop sleep, then SIGTERM drains: all within the grace period
            pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
            assert pre_stop > 0
            assert pod["terminationGracePeriodSeconds"] > pre_stop + _drain_seconds(documents)
    for hpa in (doc for doc in documents if doc["kind"] == "HorizontalPodAutoscaler"):
        metrics = hpa["spec"]["metrics"]
        cpu = {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}  # production's
        assert {"type": "Resource", "resource": cpu} in metrics
        custom = [metric for metric in metrics if metric["type"] in ("Pods", "External")]
        assert len(custom) == 1, hpa["metadata"]["name"]
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


def test_configmap_holds_the_settings_and_the_secret_the_secret_files(rendered):
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for documents in rendered.values():
        config_map = next(doc for doc in documents if doc["kind"] == "ConfigMap")
        expected = {f"SMARTCITY_{name.upper()}" for name, value in values["settings"].items() if value is not None}
        assert set(config_map["data"]) == expected
        secret = next(doc for doc in documents if doc["kind"] == "Secret")
        assert set(secret["data"]) == set(values["secrets"])
        # What a container reads from the ConfigMap (text) is what the values say.
        data = config_map["data"]
        from_config_map = Settings(**{key.removeprefix("SMARTCITY_").lower(): text for key, text in data.items()})
        for name, value in values["settings"].items():
            if value is not None and name not in PRODUCTION_SETTINGS:
                assert getattr(from_config_map, name) == getattr(Settings(**{name: value}), name), name
    production = next(doc for doc in rendered["production"] if doc["kind"] == "ConfigMap")["data"]
    assert production["SMARTCITY_TOPIC_PARTITIONS"] == "6" and production["SMARTCITY_LOG_LEVEL"] == "WARNING"


def test_the_network_policy_covers_every_function_and_leaves_spark_alone(rendered):
    for documents in rendered.values():
        policy = next(doc for doc in documents if doc["kind"] == "NetworkPolicy"
                      and doc["metadata"]["name"] == "smartcity-functions")
        selector = policy["spec"]["podSelector"]["matchLabels"].items()
        pods = {doc["metadata"]["name"]: doc["spec"]["template"]["metadata"]["labels"] for doc in documents
                if doc["kind"] == "Deployment" or doc["apiVersion"] == knative.SERVICE_API}
        assert pods and all(selector <= labels.items() for labels in pods.values())
        streaming = next(doc for doc in documents if doc["kind"] == "SparkApplication")["spec"]
        assert not any(selector <= streaming[role]["labels"].items() for role in ("driver", "executor"))


# Offline schema validation ---------------------------------------------------------------------------------------

def _strict(schema: Any) -> Any:
    """The schema with unknown properties refused wherever it lists properties and does not preserve unknown ones."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: _strict(value) for key, value in schema.items()}
    if "properties" in strict and "additionalProperties" not in strict \
            and not strict.get("x-kubernetes-preserve-unknown-fields"):
        strict["additionalProperties"] = False
    return strict


@cache
def _kubernetes_document(api_version: str) -> dict:
    spec_dir = go_module_dir(*KUBERNETES_MODULE) / "api" / "openapi-spec" / "v3"
    group_version = f"api__{api_version}" if "/" not in api_version else "apis__" + api_version.replace("/", "__")
    return _strict(json.loads((spec_dir / f"{group_version}_openapi.json").read_text()))


@cache
def _knative_service_schema() -> dict:
    resources = go_module_dir(*KNATIVE_SERVING_MODULE) / "config" / "core" / "300-resources"
    crd = yaml.safe_load((resources / "service.yaml").read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == knative.SERVICE_API.split("/")[1])
    return _strict(version["schema"]["openAPIV3Schema"])


def _missing_fields(document: dict) -> list[str]:
    if document["kind"] == "SparkApplication":
        return [field for field in SPARK_REQUIRED_FIELDS
                if knative._values(document, field.split(".")) in ([None], [""], [[]], [{}])]
    return knative.missing_fields(document)


def _validator(document: dict) -> jsonschema.Draft7Validator | None:
    api_version, kind = document["apiVersion"], document["kind"]
    if api_version == knative.SERVICE_API and kind == "Service":
        return jsonschema.Draft7Validator(_knative_service_schema())
    if kind in UNVALIDATED_KINDS:
        return None
    spec = _kubernetes_document(api_version)
    group, _, version = api_version.rpartition("/")
    wanted = {"group": group, "version": version, "kind": kind}
    name = next(name for name, schema in spec["components"]["schemas"].items()
                if wanted in schema.get("x-kubernetes-group-version-kind", []))
    return jsonschema.Draft7Validator({"$ref": f"#/components/schemas/{name}", "components": spec["components"]})


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_rendered_manifest_is_valid_against_its_schema(rendered, value_set):
    validated, checked = 0, 0
    for document in rendered[value_set]:
        where = f"{document['kind']} {document['metadata']['name']}"
        validator = _validator(document)
        if validator is None:
            assert _missing_fields(document) == [], where
            checked += 1
            continue
        errors = [f"{'.'.join(map(str, error.absolute_path))}: {error.message}"
                  for error in validator.iter_errors(document)]
        assert errors == [], where
        validated += 1
    print(f"{value_set} values: {len(rendered[value_set])} manifests rendered, {validated} validated against their "
          f"schema, {checked} ({', '.join(sorted(UNVALIDATED_KINDS))}) field-checked only")
    assert validated + checked == len(rendered[value_set])


def test_the_strict_schemas_refuse_an_unknown_field(rendered):
    """The validation is not vacuous: a misspelt field of a Deployment or a Knative Service is an error."""
    for kind in ("Deployment", "Service"):
        value_set = "production" if kind == "Deployment" else "default"
        document = next(doc for doc in rendered[value_set] if doc["kind"] == kind)
        broken = json.loads(json.dumps(document))
        broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
        assert list(_validator(broken).iter_errors(broken)), kind


def test_internal_and_role_guarded_functions_are_cluster_local_in_knative(rendered):
    _, specs = read_stack(PROJECT_ROOT / "stack.yml")
    services = {doc["metadata"]["name"]: doc for doc in rendered["default"]
                if doc["kind"] == "Service" and doc["apiVersion"] == knative.SERVICE_API}
    local = {name for name, doc in services.items()
             if doc["metadata"]["labels"].get("networking.knative.dev/visibility") == "cluster-local"}
    assert local == {spec.name for spec in specs if spec.cluster_local}
    assert {"store-timeseries", "archive-raw", "forecast-traffic"} <= local
    assert not any(name.startswith(("ingest-", "api-")) for name in local)


def test_the_streaming_jobs_on_a_cluster_get_the_session_config_of_local_runs(rendered):
    from streaming.session import SESSION_CONFIG  # no pyspark needed

    manifest = yaml.safe_load_all((PROJECT_ROOT / "infra" / "spark" / "smartcity-streaming.yaml").read_text())
    applications = [doc for documents in [*rendered.values(), list(manifest)] for doc in documents
                    if doc and doc["kind"] == "SparkApplication"]
    expected = {key: value for key, value in SESSION_CONFIG.items() if key != "spark.sql.shuffle.partitions"}
    assert expected["spark.sql.streaming.stateStore.providerClass"].endswith("RocksDBStateStoreProvider")
    for application in applications:  # a cluster has its own partitions (more threads than a laptop)
        assert application["spec"]["sparkConf"].items() >= expected.items()
