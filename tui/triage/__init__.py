"""`exuvia triage`: the live triage Textual app (see docs/triage.md)."""
