"""YANG on the device: the configured modules and their validation with libyang
(``modules``, ``libyang``, ``files``, ``errors``), and what the device tells of every module
it implements: hello, YANG library and get-schema (``library``)."""
