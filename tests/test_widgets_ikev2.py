"""The lab widgets show IKEv2 as they show IKEv1: the diagram's arrows with IKEv2 labels and
notation, the inspector's tree of an IKE_AUTH opened inside SK, the keys with RFC 7296's
formulas, the verdict in IKEv2's words."""

from __future__ import annotations

from ipseclab.demo import DemoOptions
from ipseclab.teaching.widgets import IkeLab


def lab(**kw: object) -> IkeLab:
    view = IkeLab(DemoOptions(version=2, seed=5, **kw))
    view.session.run_to_end()
    return view


def test_diagram_labels_and_states() -> None:
    view = lab(policies=2, pfs=19)
    assert view.diagram.arrow_labels() == [
        "INIT1  HDR, SAi1, KEi, Ni, N(NAT_DETECTION_SOURCE_IP), N(NAT_DETECTION_DESTINATION_IP), N(SIGNATURE_HASH_ALGORITHMS), N(IKEV2_FRAGMENTATION_SUPPORTED)",
        "INIT2  HDR, SAr1, KEr, Nr, N(NAT_DETECTION_SOURCE_IP), N(NAT_DETECTION_DESTINATION_IP), N(SIGNATURE_HASH_ALGORITHMS), N(IKEV2_FRAGMENTATION_SUPPORTED)",
        "AUTH1  HDR, SK {IDi, AUTH, N(INITIAL_CONTACT), SAi2, TSi, TSr}",
        "AUTH2  HDR, SK {IDr, AUTH, SAr2, TSi, TSr}",
        "CHILD1  HDR, SK {SAi, Ni, KEi, TSi, TSr}",
        "CHILD2  HDR, SK {SAr, Nr, KEr, TSi, TSr}",
    ]
    assert view.session.states() == {"left": "ESTABLISHED", "right": "ESTABLISHED"}
    assert "the IKE SA and every child SA are up" in view.stepper.status.value


def test_inspector_opens_ike_auth_inside_sk() -> None:
    view = lab()
    view.diagram.select(2)
    inspector = view.inspector
    assert "AUTH1" in inspector.heading.value and "SPIs" in inspector.heading.value
    titles = [inspector.tree.get_title(i) for i in range(len(inspector.tree.children))]
    assert any(t.startswith("Encrypted and Authenticated") or t.startswith("Encrypted") for t in titles), titles
    plaintext_titles = [t for t in titles if "Identification" in t or "Authentication" in t]
    assert plaintext_titles, titles
    inspector.select_field("Authentication")
    assert "of the plaintext" in inspector.hex.value


def test_keys_show_rfc_7296_formulas() -> None:
    view = lab()
    html = view.key_panel.table.value if hasattr(view.key_panel, "table") else view.key_panel.children[-1].value
    assert "formula (RFC 7296)" in html
    assert "prf(Ni | Nr, g^ir)" in html and "prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)" in html


def test_wrong_psk_says_why() -> None:
    view = lab(wrong_psk=True)
    assert "Not established" in view.stepper.status.value
    assert "pre-shared keys differ" in view.stepper.status.value


def test_remote_access_shows_the_eap_rounds_and_the_virtual_ip() -> None:
    view = lab(remote_access=True, eap=True)
    labels = [label.split("  ")[0] for label in view.diagram.arrow_labels()]
    assert labels == ["INIT1", "INIT2"] + [f"AUTH{n}" for n in range(1, 9)]
    assert "EAP(Request/MD5-Challenge)" in view.diagram.arrow_labels()[5]
    assert "left's virtual IP: <b>10.3.0.1</b> (user alice)" in view.stepper.status.value
    v1 = IkeLab(DemoOptions(seed=5, remote_access=True, eap=True))  # IKEv1: XAUTH and Mode Config
    v1.session.run_to_end()
    assert [label.split("  ")[0] for label in v1.diagram.arrow_labels()].count("CFG1") == 3
    assert "left's virtual IP: <b>10.3.0.1</b> (user alice)" in v1.stepper.status.value
    wrong = lab(remote_access=True, wrong_password=True, eap=True)
    assert "Not established" in wrong.stepper.status.value and "EAP Failure" in wrong.stepper.status.value
