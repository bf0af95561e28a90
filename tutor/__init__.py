"""tutor: turn rough notes into an explainer that teaches itself."""

__version__ = "0.1.0"
