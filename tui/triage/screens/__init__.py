"""Screens of the triage app, one class per module."""
