"""Data: public-format readers, canonical artifact schemas, validation with quarantine, synthetic world."""
