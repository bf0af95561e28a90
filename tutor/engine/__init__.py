"""The dialogue engine: one reader session over an explainer. Never imports textual."""
