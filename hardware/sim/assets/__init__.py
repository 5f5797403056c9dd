"""MJCF assets of the sim (a package only so the wheel ships its *.xml through package-data)."""
