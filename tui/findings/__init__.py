"""The findings view shared by the replay and triage apps (tui/findings/screen.py)."""
