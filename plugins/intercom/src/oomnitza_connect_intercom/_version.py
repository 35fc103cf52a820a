"""The plugin's version, in one place (its package and its User-Agent)."""

__version__ = "0.1.0"
