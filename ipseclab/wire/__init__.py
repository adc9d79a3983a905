"""Wire codecs: what every IKE version shares, and one package per version.

* :mod:`ipseclab.wire.header` — the header layout IKEv1 and IKEv2 share (the version
  a datagram speaks, before any version's codec runs);
* :mod:`ipseclab.wire.reader` and :mod:`ipseclab.wire.base` — bounded reading with
  byte offsets on every :class:`~ipseclab.errors.ParseError`, the payload base class;
* :mod:`ipseclab.wire.v1` — ISAKMP / IKEv1 (RFC 2408, 2407, 2409, 3947);
* :mod:`ipseclab.wire.v2` — IKEv2 (RFC 7296, fragments RFC 7383, multiple key exchanges
  RFC 9370): header, payload chain and every payload; the engine comes later.
"""
