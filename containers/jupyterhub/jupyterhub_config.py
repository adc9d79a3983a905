# JupyterHub for an ipseclab class on one host: every student who logs in gets a JupyterLab on
# their own copy of the labs and a lab of their own (two ipseclab peer daemons in network
# namespaces; containers=True: a container stack each). Run as root, from the repository:
#   .venv/bin/jupyterhub -f containers/jupyterhub/jupyterhub_config.py
# Students log in with their system accounts (PAM) and their servers run as those accounts
# (LocalProcessSpawner); each lab's control sockets belong to its student alone.
# See ipseclab/runtime/hub.py; tests/test_hub.py runs this with three users.
from ipseclab.runtime.hub import configure

c = get_config()  # noqa: F821 - JupyterHub provides it
configure(c, containers=False, kind="site-to-site")
c.JupyterHub.bind_url = "http://127.0.0.1:8000"  # put a TLS reverse proxy in front for a real class
