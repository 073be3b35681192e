"""Reliability and security: bad input, load, faults, hostile documents."""
