"""The ml phase: JupyterHub, the training queue, inference serving and monitoring on the cluster."""
