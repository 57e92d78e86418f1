//! Fast Leader Election (reference §4.2, §4.3).
