"""Product catalog: offerings and their recurring prices."""
