"""Sans-IO protocol cores: bytes in, events out. No asyncio, sockets, ssl or database here."""
