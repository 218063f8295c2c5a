"""models/providers package."""
