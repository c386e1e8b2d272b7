"""The gpu phase's API objects read from env/ and the chart's CRD files (no cluster)."""

from __future__ import annotations

import pytest

from affordml.errors import RunError
from affordml.gpu.apply import read_configmap, read_crds, read_node_labels

CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: probes.monitoring.coreos.com}
spec:
  versions:
  - schema:
      openAPIV3Schema:
        properties:
          op:
            enum:
            - =
            - "!="
"""


def test_crd_files_with_a_plain_equals_sign_read_as_yaml_1_2(tmp_path):
    (tmp_path / "crd-probes.yaml").write_text(CRD)
    (tmp_path / "notes.yaml").write_text("kind: Something\n")
    [crd] = read_crds(tmp_path)
    assert crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["op"]["enum"] == ["=", "!="]
    with pytest.raises(RunError, match="no CustomResourceDefinition"):
        read_crds(tmp_path / "nothing")


def test_env_files_must_be_what_the_renderer_writes(tmp_path):
    labels = tmp_path / "node-labels.yaml"
    labels.write_text('worker-1:\n  nvidia.com/device-plugin.config: "worker-1-mps"\n  gpu: "on"\n')
    assert read_node_labels(labels) == {"worker-1": {"nvidia.com/device-plugin.config": "worker-1-mps", "gpu": "on"}}
    labels.write_text("worker-1:\n  gpu: on\n")
    with pytest.raises(RunError, match="label gpu of node worker-1 is True, not a string"):
        read_node_labels(labels)
    labels.write_text("worker-1: mps\n")
    with pytest.raises(RunError, match="node -> labels"):
        read_node_labels(labels)
    configmap = tmp_path / "cm.yaml"
    configmap.write_text("kind: Secret\n")
    with pytest.raises(RunError, match="not a ConfigMap"):
        read_configmap(configmap)
