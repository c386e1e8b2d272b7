"""The real helm and the charts at the locked tags for the serving tests (outside CI)."""

from tests.gpustack.fixtures import helm_tools  # noqa: F401 - re-exported fixture
