"""The device's datastores: running, candidate and startup trees with NETCONF's edit
semantics, confirmed commits, persistence, defaults, filters and validation, independent of
how NETCONF reached them (``core.Datastore``; the device's own code reads and changes it too).
"""
