"""Dashboard pages; each module's `register()` adds its routes (NiceGUI keeps them globally)."""
