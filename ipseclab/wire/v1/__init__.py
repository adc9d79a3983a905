"""ISAKMP / IKEv1 wire codec (RFC 2408 §3, RFC 2407 §4, RFC 2409, RFC 3947).

* :mod:`ipseclab.wire.v1.constants` — assigned numbers as IntEnums and naming helpers,
* :mod:`ipseclab.wire.v1.isakmp` — typed payload dataclasses, :class:`Message`, chains,
* :mod:`ipseclab.wire.v1.tree` — a JSON-ready dissection tree for teaching views.
"""
