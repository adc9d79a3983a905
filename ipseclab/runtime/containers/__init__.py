"""Peers in containers (rootful podman): the podman adapter, the lab as a compose stack
(:mod:`~ipseclab.runtime.containers.stack`) with the entry point its containers run
(:mod:`~ipseclab.runtime.containers.entry`), and libreswan as a second interop peer."""
