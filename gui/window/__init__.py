"""The main window and what only it uses: opening model files, exporting figures."""
