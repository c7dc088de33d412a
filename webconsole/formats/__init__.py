"""The console's date formats per language (``FORMAT_MODULE_PATH``), over Django's own.

Templates name a format (``|date:"SHORT_DATETIME_FORMAT"``), never a pattern, so each language
writes dates its way: Korean as ``2026. 3. 9. 14:05`` (the numeric style of Korean documents, 24-hour
clock), English as ISO ``2026-03-09 14:05``. Everything not set here is Django's format for the language.
"""
