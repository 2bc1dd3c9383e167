"""Serving file bytes: range selection, zero-copy sending, host bandwidth sharing."""
