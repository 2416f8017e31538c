"""Django admin views of live servings state (this app keeps no models yet)."""
