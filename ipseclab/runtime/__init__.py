"""The runtime layer: what puts the sans-I/O core on a network.

* :mod:`ipseclab.runtime.transport` — thin adapters: the in-memory network (steppable,
  simulated NAT and clock), asyncio UDP, TUN, raw ESP;
* :mod:`ipseclab.runtime.daemon` and :mod:`ipseclab.runtime.control` — the peer daemon
  and its control API, configured by :mod:`ipseclab.runtime.config_toml`;
* :mod:`ipseclab.runtime.dataplane_runner` — the ESP data plane on TUN and sockets;
* :mod:`ipseclab.runtime.netlab` — namespaces, veths, the NAT router and charon interop;
* :mod:`ipseclab.runtime.containers` — podman, the lab's compose stack, libreswan;
* :mod:`ipseclab.runtime.classroom` and :mod:`ipseclab.runtime.hub` — a lab per student, on
  one host or behind JupyterHub.
"""
