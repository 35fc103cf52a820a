"""Slack hook implementations."""
