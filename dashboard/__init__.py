"""dashboard: see DESIGN.md (not built yet)."""
