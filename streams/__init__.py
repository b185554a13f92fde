"""streams: see DESIGN.md (not built yet)."""
