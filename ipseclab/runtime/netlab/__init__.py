"""Network labs in Linux network namespaces: real peers, real packets, nothing outside the lab.

* :func:`site_to_site` — left and right gateway on one veth link;
* :func:`nat` — left behind an nftables masquerading router (optionally remapping UDP ports);
* :func:`lab_names`, :func:`lab_status`, :func:`attach`, :func:`destroy` — find and tear down
  labs from any process (state in ``/run/ipseclab/<lab>/lab.json``).

Needs root (namespaces, veths, nftables).  See :mod:`ipseclab.runtime.netlab.topology`.
"""

from ipseclab.runtime.netlab.capture import Capture
from ipseclab.runtime.netlab.topology import (
    Host,
    Link,
    Nat,
    Topology,
    attach,
    destroy,
    lab_names,
    lab_status,
    nat,
    netns_name,
    site_to_site,
    validate_name,
)

__all__ = [
    "Capture",
    "Host",
    "Link",
    "Nat",
    "Topology",
    "attach",
    "destroy",
    "lab_names",
    "lab_status",
    "nat",
    "netns_name",
    "site_to_site",
    "validate_name",
]
