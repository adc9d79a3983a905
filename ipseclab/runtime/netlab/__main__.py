"""``python -m ipseclab.runtime.netlab``: the ``lab`` commands (see :mod:`ipseclab.runtime.netlab.labcli`)."""

import sys

from ipseclab.runtime.netlab.labcli import main

sys.exit(main())
