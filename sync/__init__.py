"""Sync between field servers and the central server (DESIGN.md, hop 2). Arrives with issue 5."""
