"""Prebuilt ``deploy``: serve a registered MLflow model (sklearn, pytorch, pyfunc) at an endpoint.

Inputs: ``model_uri`` (``models:/NAME/VERSION``), ``endpoint``, ``canary_percent``
(10), ``protocol`` (v2), ``min_replicas``/``max_replicas`` (1/1), ``auth`` (none).
Outputs: ``url``, ``revision``. The first deployment of an endpoint takes all
traffic; a later one is a canary with ``canary_percent`` of the requests. On a
cluster it creates or patches a KServe InferenceService; under ``workbench
run`` it starts a local KServe model server on 127.0.0.1.

    from kfp import components
    deploy = components.load_component_from_file("components/deploy.yaml")
"""

from workbench_dsl.dsl.serve import deploy

COMPONENT = deploy
