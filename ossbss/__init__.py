"""The entry point: the ``ossbss`` command and the wiring of every component into a process."""
