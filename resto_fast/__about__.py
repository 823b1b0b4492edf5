"""The version, in one place (setup reads pyproject; the package reads this)."""

__version__ = "0.1.0"
