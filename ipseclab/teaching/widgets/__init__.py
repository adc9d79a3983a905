"""Teaching widgets (ipywidgets 8) that render a lab session's trace events."""

from ipseclab.teaching.widgets.views import (
    IkeLab,
    KeyPanel,
    MessageInspector,
    PolicyEditor,
    SequenceDiagram,
    Stepper,
)

__all__ = ["IkeLab", "KeyPanel", "MessageInspector", "PolicyEditor", "SequenceDiagram", "Stepper"]
