"""Vendors as objects: the declarative REST description, the vendor base classes, sessions."""
