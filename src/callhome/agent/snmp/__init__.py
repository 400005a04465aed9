"""SNMP on the device (RFC 5592/5591/3430, RFC 6353): the command responder (``agent``), its
MIB objects (``mib``) and notifications sent at once or held (``notify``)."""
