"""Test helpers for the gpu phase against the real control plane of tests/kubecp (outside CI)."""
