"""GDPR tooling: data subject access exports, erasure by crypto-shredding, retention policies."""
