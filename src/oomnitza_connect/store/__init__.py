"""Stores: where people, SaaS users and sync sessions live.

:class:`~oomnitza_connect.store.base.Store` is the interface; the embedded
default is SQLite (:mod:`oomnitza_connect.store.sqlite`).
"""
