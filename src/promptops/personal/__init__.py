"""Personal data at rest: per-subject data keys (crypto-shredding) and keyed lookup hashes."""
