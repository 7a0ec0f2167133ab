"""The GUI's bridge to the engine: the session controller, background jobs and
the Qt-free state the panels share (measurements, magnitude counts, target kinds).
No widgets live here."""
