"""The module files: finding them in `modules/` (folder), importing them off the main
thread (importer), checking what they declare (loader), keeping the current set and
reloading edits (registry), and their schedules (schedule)."""
