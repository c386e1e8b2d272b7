"""`affordml report`: who used the GPUs, how much and when, read from Prometheus (dcgm-exporter's metrics)."""
