"""Events in, prepared splits out: readers, vocabularies, protocols, synthetic and production-like data."""

PROTOCOLS = ("strong", "bars")  # strong generalization (Mult-VAE) and the BARS files' fixed splits
