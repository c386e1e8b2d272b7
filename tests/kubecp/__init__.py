"""A real Kubernetes control plane for tests: etcd + kube-apiserver + kube-scheduler + kube-controller-manager in
their own network namespace with only loopback, token auth and a CA made here, and Node objects registered
without a kubelet. Binaries come from environment variables (see README.md); nothing of them is in the repo."""
