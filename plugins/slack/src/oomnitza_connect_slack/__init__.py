"""Slack connector for oomnitza-connect."""
