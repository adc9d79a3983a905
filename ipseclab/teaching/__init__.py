"""The teaching layer: what a student and an instructor see.

* :mod:`ipseclab.teaching.lab` — the lab session the notebooks step through;
* :mod:`ipseclab.teaching.widgets` — stepper, sequence diagram, inspector, keys, policies;
* :mod:`ipseclab.teaching.decode` — a capture explained message by message;
* :mod:`ipseclab.teaching.labcheck` — the notebooks' check cells;
* :mod:`ipseclab.teaching.offline_attack` — the Aggressive Mode PSK dictionary attack;
* :mod:`ipseclab.teaching.peers` — where a lab's peers run (memory, namespaces, containers);
* :mod:`ipseclab.teaching.capture_view` — any capture in the widgets, followed live too;
* :mod:`ipseclab.teaching.instructor` — the projector page (served by ``ipseclab instructor``);
* :mod:`ipseclab.teaching.grading` — the solutions in nbgrader's form, kept in step with the labs.

All of it is computed from the trace events (:mod:`ipseclab.trace`,
:mod:`ipseclab.trace_queries`), never from a peer's internals.
"""
