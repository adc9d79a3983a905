"""Peers in containers (rootful podman): the image builder and one module per peer kind."""
