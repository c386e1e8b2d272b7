"""The ml phase: the ML services (monitoring, training queue, serving, JupyterHub) as Helm releases."""
