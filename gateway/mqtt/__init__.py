"""MQTT sink: readings to the owner's broker, with Home Assistant discovery (issue 19)."""
