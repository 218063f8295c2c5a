"""models/adapters package."""
