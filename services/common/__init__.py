"""The kit every cwshub service stands on. It has no routes of its own."""
