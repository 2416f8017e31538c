"""Who is calling: OIDC token verification, the Identity, DRF authentication and console login."""
