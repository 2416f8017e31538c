"""Django admin views of live endpoints state (this app keeps no models yet)."""
