"""The cloud phase: carve the Kubernetes VMs out of the all-in-one OpenStack with openstacksdk.

This package imports openstacksdk only inside the functions that talk to the cloud; importing the package, or
its pure modules (names, spec, faults), costs nothing.
"""
