"""``python -m ipseclab.netlab``: the ``lab`` commands (see :mod:`ipseclab.netlab.labcli`)."""

import sys

from ipseclab.netlab.labcli import main

sys.exit(main())
