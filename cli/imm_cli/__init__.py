"""imm: the command-line client of the Inference Model Manager (no Django; only httpx, rich, click)."""

__version__ = "0.1.0"
