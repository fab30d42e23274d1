"""Everything that speaks to Asterisk, and a real Asterisk to speak to (`hotline.asterisk.sandbox`)."""
