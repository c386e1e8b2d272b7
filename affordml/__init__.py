"""affordml: one PC with an NVIDIA GPU, carved into a shared ML platform."""

__version__ = "0.1.0"
