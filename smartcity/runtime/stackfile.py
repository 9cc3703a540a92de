"""``stack.yml``, OpenFaaS's stack file, read strictly, and what the runtime derives from each entry.

The schema is faas-cli's (``stack/schema.go``); a key faas-cli does not know is refused here, so a typo such as
``enviroment:`` is an error rather than a silently ignored setting. What OpenFaaS has no field for is carried in
annotations, which faas-cli passes through untouched:

==================================  =======================================================================
``topic``                           Kafka topics that trigger the function, comma-separated (the OpenFaaS
                                    connectors' convention). Without it the trigger is HTTP, ``/function/<name>``.
``smartcity.io/output-topic``       topic of the events the function returns (default: the topic of their type
                                    in ``smartcity.events.STREAMS``)
``smartcity.io/delivery-retry``     retries after a failed delivery (Knative ``delivery.retry``)
``smartcity.io/delivery-backoff-policy``  ``exponential`` or ``linear``
``smartcity.io/delivery-backoff-delay``   ISO 8601 duration, e.g. ``PT0.2S``
``smartcity.io/dead-letter-topic``  where events go when retries are used up (default ``dead-letter``)
``smartcity.io/every-stream``       ``"true"``: also the topics of the ``SMARTCITY_STREAMS_DIR`` streams
==================================  =======================================================================

A ``SMARTCITY_STREAMS_DIR`` stream without an ``ingest-<topic>`` entry gets one generated from its descriptor
(:mod:`smartcity.runtime.stream_entries`), so a city's own stream needs no edit of this file.

Scale is in OpenFaaS's labels (``com.openfaas.scale.min``, ``.max``, ``.target``); the label
``smartcity.io/internal: "true"`` marks a function served to the platform only (:attr:`FunctionSpec.internal`),
``smartcity.io/caller-role: operator`` one whose HTTP route needs a JWT of that role (:attr:`FunctionSpec.caller_role`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from smartcity.errors import ConfigurationError
from smartcity.events import errors_by_field
from smartcity.runtime.delivery import DeliverySpec
from smartcity.runtime.stream_entries import EVERY_STREAM, folder_topics, generated_entries

TOPIC_ANNOTATION = "topic"
ANNOTATION_PREFIX = "smartcity.io/"
OUTPUT_TOPIC = f"{ANNOTATION_PREFIX}output-topic"
DEAD_LETTER = f"{ANNOTATION_PREFIX}dead-letter-topic"
INTERNAL_LABEL = f"{ANNOTATION_PREFIX}internal"
CALLER_ROLE_LABEL = f"{ANNOTATION_PREFIX}caller-role"
DELIVERY_ANNOTATIONS = {
    "retry": f"{ANNOTATION_PREFIX}delivery-retry",
    "backoff_policy": f"{ANNOTATION_PREFIX}delivery-backoff-policy",
    "backoff_delay": f"{ANNOTATION_PREFIX}delivery-backoff-delay",
    "dead_letter_topic": DEAD_LETTER,
}
KNOWN_ANNOTATIONS = {TOPIC_ANNOTATION, OUTPUT_TOPIC, EVERY_STREAM, *DELIVERY_ANNOTATIONS.values()}
FUNCTION_NAME_BUILD_ARG = "FUNCTION_NAME"
# Kubernetes (DNS-1123 label) names, as OpenFaaS and Knative require of a function.
FUNCTION_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Resources(_Strict):
    memory: str | None = None
    cpu: str | None = None


class StackFunction(_Strict):
    """One entry of ``functions:``, field for field faas-cli's ``stack.Function``."""

    lang: str
    handler: str
    image: str
    fprocess: str | None = None
    environment: dict[str, str] = Field(default_factory=dict)
    environment_file: list[str] = Field(default_factory=list)
    secrets: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    limits: Resources | None = None
    requests: Resources | None = None
    constraints: list[str] | None = None
    build_args: dict[str, str] = Field(default_factory=dict)
    build_options: list[str] = Field(default_factory=list)
    skip_build: bool = False
    readonly_root_filesystem: bool = False
    namespace: str | None = None
    registry_auth: str | None = None
    platforms: str | None = None

    @field_validator("environment", "labels", "annotations", "build_args", mode="before")
    @classmethod
    def _values_as_text(cls, value: object) -> object:
        # YAML reads `retry: 3` as an int; OpenFaaS maps are string to string.
        if isinstance(value, dict):
            return {str(k): "" if v is None else str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}
        return value


class Provider(_Strict):
    name: Literal["openfaas"] = "openfaas"
    gateway: str | None = None
    network: str | None = None


class TemplateSource(_Strict):
    name: str
    source: str | None = None
    path: str | None = None


class StackConfiguration(_Strict):
    templates: list[TemplateSource] = Field(default_factory=list)
    copy_: list[str] = Field(default_factory=list, alias="copy")


class StackFile(_Strict):
    version: str = "1.0"  # YAML reads `version: 1.0` as a number
    provider: Provider = Field(default_factory=Provider)
    functions: dict[str, StackFunction] = Field(default_factory=dict)
    configuration: StackConfiguration = Field(default_factory=StackConfiguration)

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, (int, float)) else value


class FunctionSpec(BaseModel):
    """One function as the runtime sees it: paths resolved, annotations turned into typed settings."""

    model_config = ConfigDict(frozen=True)

    name: str
    entry: StackFunction
    handler_dir: Path
    environment: dict[str, str]
    topics: tuple[str, ...]
    output_topic: str | None
    delivery: DeliverySpec

    @property
    def internal(self) -> bool:
        """Whether the function is for the platform's own callers only (its trigger, other functions): the
        ``smartcity.io/internal: "true"`` label. The gateway does not serve it from outside (404), Knative keeps it
        cluster-local."""
        return self.entry.labels.get(INTERNAL_LABEL, "").lower() == "true"

    @property
    def caller_role(self) -> str | None:
        """The JWT role an outside caller of the function's HTTP route needs (checked by the gateway), if any: a
        Kafka-triggered function that may also be called by hand, such as forecast-traffic."""
        return self.entry.labels.get(CALLER_ROLE_LABEL) or None

    @property
    def cluster_local(self) -> bool:
        """Whether a cluster keeps the function off its external routes: an internal one, and one whose callers
        need a role (in a cluster no gateway checks it)."""
        return self.internal or self.caller_role is not None

    @property
    def trigger(self) -> str:
        return f"kafka {','.join(self.topics)}" if self.topics else f"http /function/{self.name}"

    @property
    def consumer_group(self) -> str:
        return f"smartcity-{self.name}"

    @property
    def kafka_source_name(self) -> str:
        return f"{self.name}-source"

    def kafka_source_uri(self, namespace: str) -> str:
        """The KafkaSource's URI, which prefixes the source (``<uri>#<topic>``) of the plain records it wraps."""
        return f"/apis/v1/namespaces/{namespace}/kafkasources/{self.kafka_source_name}"


def _environment(entry: StackFunction, base: Path, where: str) -> dict[str, str]:
    """``environment_file`` entries in order, then ``environment``, as faas-cli merges them."""
    merged: dict[str, str] = {}
    for name in entry.environment_file:
        path = base / name
        try:
            content = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise ConfigurationError(f"{where}.environment_file", f"cannot read {path}: {error}") from None
        merged.update({str(k): str(v) for k, v in (content.get("environment") or {}).items()})
    return {**merged, **entry.environment}


def _spec(name: str, entry: StackFunction, base: Path) -> FunctionSpec:
    where = f"functions.{name}"
    if not FUNCTION_NAME.fullmatch(name):
        raise ConfigurationError(where, "a function name is lowercase letters, digits and '-', at most 63 characters")
    unknown = sorted(key for key in entry.annotations if key.startswith(ANNOTATION_PREFIX) and key not in KNOWN_ANNOTATIONS)
    if unknown:
        raise ConfigurationError(f"{where}.annotations", f"unknown {unknown}; known: {sorted(KNOWN_ANNOTATIONS)}")
    if entry.build_args.get(FUNCTION_NAME_BUILD_ARG) != name:
        raise ConfigurationError(
            f"{where}.build_args", f"must set {FUNCTION_NAME_BUILD_ARG}: {name} (the template bakes it into the image)"
        )
    topics = tuple(t.strip() for t in entry.annotations.get(TOPIC_ANNOTATION, "").split(",") if t.strip())
    if entry.annotations.get(EVERY_STREAM, "").lower() == "true":
        topics += tuple(topic for topic in folder_topics() if topic not in topics)
    delivery_values = {field: entry.annotations[key] for field, key in DELIVERY_ANNOTATIONS.items() if key in entry.annotations}
    try:
        delivery = DeliverySpec(**delivery_values)
    except ValidationError as error:
        raise ConfigurationError(f"{where}.annotations", f"bad delivery spec: {errors_by_field(error)}") from None
    if delivery.dead_letter_topic in topics:
        raise ConfigurationError(
            f"{where}.annotations.{DEAD_LETTER}",
            f"{delivery.dead_letter_topic!r} is also an input topic: its failures would loop back into it",
        )
    return FunctionSpec(
        name=name,
        entry=entry,
        handler_dir=(base / entry.handler).resolve(),
        environment=_environment(entry, base, where),
        topics=topics,
        output_topic=entry.annotations.get(OUTPUT_TOPIC) or None,
        delivery=delivery,
    )


def read_stack(path: Path) -> tuple[StackFile, list[FunctionSpec]]:
    """The stack file and the spec of each function, in file order; ConfigurationError naming the bad key."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigurationError("stack file", f"cannot read {path}: {error}") from None
    try:
        stack = StackFile.model_validate(raw or {})
    except ValidationError as error:
        fields = errors_by_field(error)
        raise ConfigurationError(f"stack file {path}", "; ".join(f"{k}: {v}" for k, v in fields.items())) from None
    generated = {name: StackFunction.model_validate(entry) for name, entry in generated_entries(stack.functions).items()}
    stack = stack.model_copy(update={"functions": {**stack.functions, **generated}})
    base = path.resolve().parent
    return stack, [_spec(name, entry, base) for name, entry in stack.functions.items()]
