"""The kubernetes phase's engine side: Kubespray from its release tarball, its own toolchain, the connection
inventory from the cloud phase's record, cluster.yml through ansible-runner, the admin kubeconfig and the node wait.

Knows Kubespray and the Kubernetes API, nothing of OpenStack: the cloud phase's record reaches it as plain data.
"""
