"""The compute service (Nova v2.1): flavors, key pairs and, next, servers.

``states`` holds the instance lifecycle (Nova's vm/task/power states, the
API ``status`` mapping and the table of which action is legal when),
``models`` the ``compute_*`` tables, ``flavors`` and ``keypairs`` the
service layer, ``api/`` the REST API mounted at ``/compute``.
"""
