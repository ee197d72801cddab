"""Security building blocks the server shares: keys, encryption at rest, signatures."""
