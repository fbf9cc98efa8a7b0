"""Hookway's date and time formats (settings.FORMAT_MODULE_PATH), over Django's locale
defaults: an operator comparing a delivery's attempts with a receiver's logs needs the
seconds, which Django's English format ("Nov. 23, 2026, 2:25 p.m.") leaves out."""
