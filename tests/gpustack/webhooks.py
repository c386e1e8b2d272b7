"""Stand-in for webhook servers on the real control plane: nothing runs under the stand-in kubelet, so an admission
webhook served from a release's namespace would refuse (fail closed, "connection refused") every object it watches;
in a cluster that release's pod answers. The tests drop such webhooks, and say which."""

from __future__ import annotations


def without_webhooks(api, namespace: str) -> list[str]:
    """Delete the validating and mutating webhook configurations with a webhook served from `namespace`."""
    from kubernetes import client

    admission = client.AdmissionregistrationV1Api(api)
    dropped = []
    for lister, deleter in (
        (admission.list_validating_webhook_configuration, admission.delete_validating_webhook_configuration),
        (admission.list_mutating_webhook_configuration, admission.delete_mutating_webhook_configuration),
    ):
        for config in lister().items:
            if any(w.client_config.service and w.client_config.service.namespace == namespace for w in config.webhooks):
                deleter(config.metadata.name)
                dropped.append(config.metadata.name)
    return dropped
