"""Helm releases driven by affordml: pinned chart archives, rendered values files, a stamp that makes an unchanged
re-run a no-op, a failed release rolled back and explained in one line. Knows Helm and the Kubernetes API, nothing
of what the charts install."""

from affordml.helm.release import Release, ReleaseStamp, release_stamp

__all__ = ["Release", "ReleaseStamp", "release_stamp"]
