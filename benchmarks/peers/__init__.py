"""One module per peer engine; each exposes ``NAME``, ``PACKAGE`` and ``setup() -> decide``."""
