"""analytics: see DESIGN.md (not built yet)."""
