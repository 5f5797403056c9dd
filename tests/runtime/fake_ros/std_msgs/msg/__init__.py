class String:
    """Stand-in for the rosidl-generated class (only its identity is used)."""
