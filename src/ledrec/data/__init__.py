"""Events in, prepared splits out: readers, vocabularies, protocols, synthetic data (the production-like world
is :mod:`ledrec.simulate.world`)."""

PROTOCOLS = ("strong", "bars", "time")  # strong generalization (Mult-VAE), BARS's fixed files, a cut by time
