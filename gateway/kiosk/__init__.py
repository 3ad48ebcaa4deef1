"""The clinic kiosk: staff PIN, staff unlock and lockout, check-in codes, session watcher."""
