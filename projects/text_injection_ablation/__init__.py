"""Paper Table 4: cross-attention text injections for L-DIT (see README.md)."""
