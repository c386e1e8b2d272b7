"""The gpu phase: the GPU sharing stack (GPU Operator, HAMi) installed with Helm, node labels and the device
plugin's sharing configuration applied through the Kubernetes API."""
