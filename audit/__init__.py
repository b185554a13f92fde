"""audit: see DESIGN.md (not built yet)."""
