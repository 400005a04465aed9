"""Who may do what on the device: the managers it knows by identity, with their users and
groups (``managers``), and NETCONF access control, RFC 8341 (``nacm``)."""
