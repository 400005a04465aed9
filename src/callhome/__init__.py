"""callhome: manage devices that cannot be dialed, over connections they open themselves."""

__version__ = "0.1.0"
