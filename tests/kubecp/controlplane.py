"""etcd + kube-apiserver + kube-scheduler + kube-controller-manager in their own network namespace (loopback only).

Binary paths come from AFFORDML_KUBE_BIN_DIR and AFFORDML_ETCD_BIN (see README.md). Everything started is
stopped by PID on exit, then the namespace is deleted.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import yaml

from tests.kubecp.netns import Forwarder, listen

BIN_DIR_ENV = "AFFORDML_KUBE_BIN_DIR"
ETCD_ENV = "AFFORDML_ETCD_BIN"
COMPONENTS = ("kube-apiserver", "kube-scheduler", "kube-controller-manager")
API_PORT = 6443
SERVICE_RANGE = "10.233.0.0/18"  # Kubespray's default, like the platform's
START_TIMEOUT_S = 90
STOP_TIMEOUT_S = 15


class ControlPlaneError(RuntimeError):
    pass


def why_unavailable() -> str | None:
    """Why the control plane cannot run here, or None."""
    if os.environ.get("CI"):
        return "CI: no registry ships kube-apiserver (a real control plane runs outside CI, see tests/kubecp/README.md)"
    bin_dir, etcd = os.environ.get(BIN_DIR_ENV), os.environ.get(ETCD_ENV)
    if not bin_dir or not etcd:
        return f"set {BIN_DIR_ENV} (kube-apiserver, kube-scheduler, kube-controller-manager) and {ETCD_ENV} (etcd)"
    missing = [c for c in COMPONENTS if not os.access(Path(bin_dir) / c, os.X_OK)]
    if missing or not os.access(etcd, os.X_OK):
        return f"not executable: {', '.join(missing + ([] if os.access(etcd, os.X_OK) else [etcd]))}"
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    if shutil.which("openssl") is None or shutil.which("ip") is None:
        return "needs openssl and ip (iproute2)"
    return None


def _run(argv: list[str], timeout: float = 30) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise ControlPlaneError(f"{' '.join(argv)}: {done.stderr.strip()[-500:]}")
    return done.stdout


class ControlPlane:
    def __init__(self, workdir: Path, extra_sans: tuple[str, ...] = (), bin_dir: Path | None = None) -> None:
        self.workdir = Path(workdir)
        self.bin_dir = Path(bin_dir or os.environ[BIN_DIR_ENV])
        self.etcd = Path(os.environ[ETCD_ENV])
        self.extra_sans = tuple(extra_sans)
        self.netns = f"affkcp{os.getpid() % 100000}"
        self.token = secrets.token_hex(16)
        self.processes: dict[str, subprocess.Popen] = {}
        self.forwarders: list[Forwarder] = []
        self._local_port: int | None = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> ControlPlane:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if Path(f"/run/netns/{self.netns}").exists():
            raise ControlPlaneError(f"network namespace {self.netns} exists already")
        _run(["ip", "netns", "add", self.netns])
        _run(["ip", "-n", self.netns, "link", "set", "lo", "up"])
        links = json.loads(_run(["ip", "-n", self.netns, "-j", "link", "show"]))
        if [link["ifname"] for link in links] != ["lo"]:
            raise ControlPlaneError(f"{self.netns} has more than loopback: {links}")
        self._make_pki()
        started = time.monotonic()
        self._spawn("etcd", [str(self.etcd), *self._etcd_args()])
        self._spawn("kube-apiserver", [str(self.bin_dir / "kube-apiserver"), *self._apiserver_args()])
        self._local_port = self.forward()
        self._wait_ready(started)
        self._spawn("kube-controller-manager", [str(self.bin_dir / "kube-controller-manager"), *self._kcm_args()])
        self._spawn("kube-scheduler", [str(self.bin_dir / "kube-scheduler"), *self._scheduler_args()])
        self.ready_after_s = time.monotonic() - started

    def stop(self) -> None:
        for forwarder in self.forwarders:
            forwarder.close()
        self.forwarders.clear()
        for name in reversed(list(self.processes)):
            process = self.processes.pop(name)
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(STOP_TIMEOUT_S)
        if Path(f"/run/netns/{self.netns}").exists():
            subprocess.run(["ip", "netns", "del", self.netns], check=False, capture_output=True)

    # ------------------------------------------------------------------ access
    def forward(self, netns: str | None = None, address: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on address:port inside `netns` (None: here) and forward to the API server; returns the port."""
        forwarder = Forwarder(listen(netns, address, port), self.netns, ("127.0.0.1", API_PORT))
        self.forwarders.append(forwarder)
        return forwarder.port

    @property
    def local_url(self) -> str:
        return f"https://127.0.0.1:{self._local_port}"

    def admin_kubeconfig(self, server: str | None = None) -> str:
        """A kubeconfig for the admin token (group system:masters), like Kubespray's admin.conf."""
        return yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "cluster.local",
                        "cluster": {
                            "server": server or self.local_url,
                            "certificate-authority-data": _b64(self.pki / "ca.crt"),
                        },
                    }
                ],
                "users": [{"name": "kubernetes-admin", "user": {"token": self.token}}],
                "contexts": [
                    {"name": "admin@cluster.local", "context": {"cluster": "cluster.local", "user": "kubernetes-admin"}}
                ],
                "current-context": "admin@cluster.local",
            },
            sort_keys=False,
        )

    def client(self):
        """A kubernetes-client ApiClient for the admin, through the local forwarder."""
        from kubernetes import client

        conf = client.Configuration()
        conf.host = self.local_url
        conf.ssl_ca_cert = str(self.pki / "ca.crt")
        conf.api_key = {"authorization": f"Bearer {self.token}"}
        return client.ApiClient(conf)

    def register_node(
        self,
        name: str,
        capacity: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
        ready: bool = True,
        kubelet_version: str | None = None,
    ) -> None:
        """A Node without a kubelet: created, then its status patched (Ready, capacity, node info)."""
        from kubernetes import client

        core = client.CoreV1Api(self.client())
        capacity = {"cpu": "4", "memory": "8Gi", "pods": "110", **(capacity or {})}
        core.create_node(client.V1Node(metadata=client.V1ObjectMeta(name=name, labels=labels or {})))
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        version = kubelet_version or self.server_version()
        status = {
            "status": {
                "capacity": capacity,
                "allocatable": capacity,
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True" if ready else "False",
                        "reason": "KubeletReady" if ready else "KubeletNotReady",
                        "message": "registered by the affordml test fixture",
                        "lastHeartbeatTime": now,
                        "lastTransitionTime": now,
                    }
                ],
                "nodeInfo": {
                    "kubeletVersion": version,
                    "kubeProxyVersion": version,
                    "machineID": "",
                    "systemUUID": "",
                    "bootID": "",
                    "kernelVersion": "",
                    "osImage": "",
                    "containerRuntimeVersion": "",
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                },
            }
        }
        core.patch_node_status(name, status)
        if ready:  # admission put node.kubernetes.io/not-ready on the new Node; no lifecycle controller lifts it
            core.patch_node(name, {"spec": {"taints": None}})

    def alive(self) -> dict[str, bool]:
        return {name: process.poll() is None for name, process in self.processes.items()}

    def set_ready(self, name: str, ready: bool) -> None:
        from kubernetes import client

        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        condition = {
            "type": "Ready",
            "status": "True" if ready else "False",
            "reason": "KubeletReady" if ready else "KubeletNotReady",
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }
        core = client.CoreV1Api(self.client())
        core.patch_node_status(name, {"status": {"conditions": [condition]}})
        if ready:
            core.patch_node(name, {"spec": {"taints": None}})

    def server_version(self) -> str:
        from kubernetes import client

        return client.VersionApi(self.client()).get_code().git_version

    # ------------------------------------------------------------------ internals
    @property
    def pki(self) -> Path:
        return self.workdir / "pki"

    def _make_pki(self) -> None:
        pki = self.pki
        pki.mkdir(parents=True, exist_ok=True)
        _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=affordml-test-ca",
              "-keyout", str(pki / "ca.key"), "-out", str(pki / "ca.crt")])  # fmt: skip
        sans = ["DNS:kubernetes", "DNS:kubernetes.default", "DNS:kubernetes.default.svc",
                "DNS:kubernetes.default.svc.cluster.local", "DNS:localhost", "IP:127.0.0.1", "IP:10.233.0.1",
                *(f"IP:{a}" for a in self.extra_sans)]  # fmt: skip
        (pki / "san.cnf").write_text(f"subjectAltName={','.join(sans)}\n")
        _run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=kube-apiserver",
              "-keyout", str(pki / "apiserver.key"), "-out", str(pki / "apiserver.csr")])  # fmt: skip
        _run(["openssl", "x509", "-req", "-in", str(pki / "apiserver.csr"), "-CA", str(pki / "ca.crt"),
              "-CAkey", str(pki / "ca.key"), "-CAcreateserial", "-days", "2", "-extfile", str(pki / "san.cnf"),
              "-out", str(pki / "apiserver.crt")])  # fmt: skip
        _run(["openssl", "genrsa", "-out", str(pki / "sa.key"), "2048"])
        _run(["openssl", "rsa", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub")])
        (pki / "tokens.csv").write_text(f"{self.token},admin,admin,system:masters\n")
        inner = self.admin_kubeconfig(f"https://127.0.0.1:{API_PORT}")
        (pki / "admin.conf").write_text(inner)
        for path in pki.iterdir():
            path.chmod(0o600)

    def _etcd_args(self) -> list[str]:
        return [
            f"--data-dir={self.workdir / 'etcd'}",
            "--listen-client-urls=http://127.0.0.1:2379",
            "--advertise-client-urls=http://127.0.0.1:2379",
            "--listen-peer-urls=http://127.0.0.1:2380",
            "--initial-advertise-peer-urls=http://127.0.0.1:2380",
            "--initial-cluster=default=http://127.0.0.1:2380",
        ]

    def _apiserver_args(self) -> list[str]:
        pki = self.pki
        return [
            "--etcd-servers=http://127.0.0.1:2379",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={API_PORT}",
            f"--service-cluster-ip-range={SERVICE_RANGE}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--token-auth-file={pki / 'tokens.csv'}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            "--enable-aggregator-routing=true",
        ]

    def _kcm_args(self) -> list[str]:
        pki = self.pki
        return [
            f"--kubeconfig={pki / 'admin.conf'}",
            "--bind-address=127.0.0.1",
            "--leader-elect=false",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--service-cluster-ip-range={SERVICE_RANGE}",
            # no kubelet renews these nodes' leases: the lifecycle controller would mark them NotReady
            "--controllers=*,-node-lifecycle-controller",
        ]

    def _scheduler_args(self) -> list[str]:
        return [f"--kubeconfig={self.pki / 'admin.conf'}", "--bind-address=127.0.0.1", "--leader-elect=false"]

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - kept open for the child's lifetime
        self.processes[name] = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def _wait_ready(self, started: float) -> None:
        context = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        request = urllib.request.Request(f"{self.local_url}/readyz", headers={"Authorization": f"Bearer {self.token}"})
        last = ""
        while time.monotonic() - started < START_TIMEOUT_S:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise ControlPlaneError(f"{name} exited: {self.log_tail(name)}")
            try:
                with urllib.request.urlopen(request, context=context, timeout=3) as answer:
                    if answer.status == 200:
                        return
            except OSError as exc:
                last = str(exc)
            time.sleep(0.5)
        tail = self.log_tail("kube-apiserver")
        raise ControlPlaneError(f"API server not ready after {START_TIMEOUT_S}s ({last}): {tail}")

    def log_tail(self, name: str, chars: int = 2000) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def _b64(path: Path) -> str:
    import base64

    return base64.b64encode(path.read_bytes()).decode()
