"""Widgets of the replay app, one class per module."""
