"""An InferenceService's request log on a cluster: KServe's payload logger writing to object storage.

``[cluster] request_log_uri = "s3://bucket/prefix"`` gives every ``@serve`` endpoint with
``log_requests=True`` a ``spec.predictor.logger`` in *storage* mode: KServe's agent sidecar
(injected by its pod webhook, kserve/kserve ``pkg/webhook/admission/pod/agent_injector.go``)
writes each request and each 200 response as one JSON object. Where, as KServe builds the
key (``pkg/logger/store.go``, ``BlobStore.getObjectKey``, v0.17.0 to v0.20.0)::

    <request_log_uri>/<namespace>/<isvc>/<component>/<storage.path>/<id>-request.json
    <request_log_uri>/<namespace>/<isvc>/<component>/<storage.path>/<id>-response.json

``<component>`` is the pod's ``component`` label (``predictor``). The body of each object is
the agent's ``LogRequest`` (``pkg/logger/types.go``) marshalled by its JSON marshaller
(``pkg/logger/marshaller_json.go``): one object for a batch of one (the default
``batchSize``), an array for a larger batch; the HTTP body is in ``bytes`` (base64, as Go
encodes a ``[]byte``), the ISVC annotations listed in ``metadataAnnotations`` in
``annotations``, and from KServe 0.18 on the arrival time in ``occurrenceTime``.

What KServe's webhook requires of ``storage`` (``validateLogger`` in
``pkg/apis/serving/v1beta1/component.go``): ``path``, ``parameters`` and ``key`` all set.
And the agent starts its blob store only for a non-empty path (``startLogger`` in
``cmd/agent/main.go``): with ``path: ""`` every record would be dropped.
"""

from __future__ import annotations

from typing import Any

#: ``storage.path``: the folder under ``<uri>/<namespace>/<isvc>/<component>/``.
STORAGE_PATH = "payloads"
#: ``storage.key``: KServe's own default (``constants.LoggerDefaultStorageKey``), set because
#: the webhook refuses a storage spec without one.
STORAGE_KEY = "credentials"
#: ``storage.parameters.format``: the JSON marshaller (``constants.LoggerFormatKey``).
STORAGE_FORMAT = "json"
#: The service account whose secrets give the agent its object-store credentials when
#: ``request_log_service_account`` is not set (``constants.LoggerDefaultServiceAccountName``).
DEFAULT_SERVICE_ACCOUNT = "logger-sa"
#: The component label of a predictor pod (``constants.Predictor``).
COMPONENT = "predictor"
#: Schemes KServe's blob store writes (``GetStorageStrategy``: s3, gs, abfs; http is a sink).
SCHEMES = ("s3", "gs", "abfs")


def check_uri(uri: str) -> str | None:
    """None when ``uri`` is a place KServe's logger can store payloads, else why not."""
    scheme, sep, rest = uri.partition("://")
    bucket = rest.split("/", 1)[0]
    if not sep or scheme not in SCHEMES or not bucket:
        return (
            f"[cluster] request_log_uri={uri!r} must be an object-store URL KServe's payload "
            f"logger writes to: s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or abfs://..."
        )
    return None


def logger_spec(uri: str, service_account: str | None, model_uri_annotation: str) -> Any:
    """The ``spec.predictor.logger`` (KServe SDK model) that stores every payload under ``uri``."""
    from kserve.models import V1beta1LoggerSpec, V1beta1LoggerStorageSpec

    return V1beta1LoggerSpec(
        mode="all",
        url=uri.rstrip("/"),
        # Each record then carries the model version that answered it (the annotation is
        # copied to the predictor's pods: pkg/controller/v1beta1/inferenceservice/
        # components/predictor.go), so a canary's requests are told from the stable's.
        metadata_annotations=[model_uri_annotation],
        storage=V1beta1LoggerStorageSpec(
            path=STORAGE_PATH,
            key=STORAGE_KEY,
            parameters={"format": STORAGE_FORMAT},
            service_account_name=service_account or DEFAULT_SERVICE_ACCOUNT,
        ),
    )


def payload_prefix(uri: str, namespace: str, endpoint: str) -> str:
    """The folder of an endpoint's logged payloads (``store.go``'s key without the file name)."""
    return "/".join([uri.rstrip("/"), namespace, endpoint, COMPONENT, STORAGE_PATH])
