"""Small fakes of platform APIs on loopback ports, speaking the real wire format (see slack_api.py)."""
