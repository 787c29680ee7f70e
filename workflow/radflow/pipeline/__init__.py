"""The I/O edge of each pipeline rule: read the rule's inputs, call the domain code, write its outputs."""
