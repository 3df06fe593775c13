"""The Qt views (PySide6 + qasync). The only package allowed to import Qt."""
