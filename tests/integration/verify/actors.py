"""What no process here can do for the verify checks' own objects, played by the test: the kubelets (the pods the
real scheduler bound report Running, or Succeeded with the probe's output as the kubelet writes a container's
termination message; a deleted pod's end is confirmed) and Kueue's admission (a queued Job is unsuspended once a
LocalQueue of its name exists in its namespace, as Kueue does when it admits the Workload). Only the namespace
affordml-verify is touched. The Job controller, the garbage collector, the namespace controller and the
scheduler are the real ones. The kubelet part is tests/gpustack/kubelet.py's stand-in."""

from __future__ import annotations

from affordml.verify.objects import CHECK_LABEL, NAMESPACE, QUEUE_LABEL
from tests.gpustack.kubelet import StandInKubelet, finished_status, running_status

RUNNING_CHECKS = ("two-pods-one-gpu",)


class VerifyActors(StandInKubelet):
    def __init__(self, api_client, probe_output: dict[str, str], admit: bool = True, interval_s: float = 0.3):
        super().__init__(api_client, interval_s, namespace=NAMESPACE, name="verify-actors")
        self._probe = probe_output  # node -> what nvidia-smi and the probe print there
        self._admit = admit
        self.admitted: list[str] = []

    def serve(self) -> None:
        super().serve()
        if self._admit:
            self._jobs()

    def status_for(self, pod) -> dict:
        if (pod.metadata.labels or {}).get(CHECK_LABEL) in RUNNING_CHECKS:
            return running_status(pod)
        return finished_status(pod, self._probe.get(pod.spec.node_name, ""))

    def _jobs(self) -> None:
        from kubernetes import client

        batch, custom = client.BatchV1Api(self._api), client.CustomObjectsApi(self._api)
        for job in batch.list_namespaced_job(NAMESPACE, _request_timeout=10).items:
            queue = (job.metadata.labels or {}).get(QUEUE_LABEL)
            if not job.spec.suspend or not queue:
                continue
            queues = custom.list_namespaced_custom_object("kueue.x-k8s.io", "v1beta2", NAMESPACE, "localqueues")
            if any(q["metadata"]["name"] == queue for q in queues["items"]):
                batch.patch_namespaced_job(job.metadata.name, NAMESPACE, {"spec": {"suspend": False}})
                self.admitted.append(job.metadata.name)
