"""Django admin views of live tenants state (this app keeps no models yet)."""
