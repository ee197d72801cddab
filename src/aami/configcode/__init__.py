"""Configuration as code: the whole configuration as one YAML document, planned and applied."""
