"""Events in, prepared splits out: readers, vocabularies, protocols, synthetic and production-like data."""

PROTOCOLS = ("strong", "bars", "time")  # strong generalization (Mult-VAE), BARS's fixed files, a cut by time
