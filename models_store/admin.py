"""Django admin views of live models state (this app keeps no models yet)."""
