"""ipseclab — a lab kit that teaches IPsec by running it.

The package implements a real IKEv1 stack as a sans-I/O core (exchanges are fed
``(bytes, address, now)`` and return datagrams, timers and trace events) with thin
transports around it.
"""

__version__ = "0.1.0"
