"""API conventions shared by every route: rendering, the envelope, parsing, errors, permissions."""
