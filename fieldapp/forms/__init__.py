"""Forms as data: definitions, the schema model, validation, Flask-WTF builders and HTML attributes."""
