"""IKEv2 wire codec (RFC 7296 §3, RFC 7383 §2.5, RFC 9370).

* :mod:`ipseclab.wire.v2.constants` — assigned numbers from the IANA "Internet Key
  Exchange Version 2 (IKEv2) Parameters" registries as IntEnums,
* :mod:`ipseclab.wire.v2.sa` — the SA payload with proposals, transforms and attributes,
* :mod:`ipseclab.wire.v2.payloads` — every other payload as a typed dataclass,
* :mod:`ipseclab.wire.v2.message` — the header, payload chains and :class:`Message`.
"""
