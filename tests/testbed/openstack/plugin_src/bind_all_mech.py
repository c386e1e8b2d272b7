"""A neutron ML2 mechanism driver that binds every port at once, with no dataplane behind it.

For API-level tests only: ports get vif type ovs and status ACTIVE without any agent, so nova's fake
compute driver can boot servers. Registered as ``affordml_bind_all`` under neutron.ml2.mechanism_drivers.
"""

from neutron_lib import constants
from neutron_lib.api.definitions import portbindings
from neutron_lib.plugins.ml2 import api


class BindEveryPortDriver(api.MechanismDriver):
    """Binds each port to its first segment."""

    def initialize(self):
        """Nothing to set up."""

    @property
    def connectivity(self):
        """Layer-2 connectivity, like an OVS agent would give."""
        return portbindings.CONNECTIVITY_L2

    def bind_port(self, context):
        """Bind the port to the first segment offered."""
        for segment in context.segments_to_bind:
            details = {portbindings.CAP_PORT_FILTER: True, portbindings.OVS_HYBRID_PLUG: False}
            context.set_binding(
                segment[api.ID], portbindings.VIF_TYPE_OVS, details, status=constants.PORT_STATUS_ACTIVE
            )
            return
