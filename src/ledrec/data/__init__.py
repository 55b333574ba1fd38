"""Events in, prepared splits out: readers, vocabularies, protocols, synthetic data (the production-like world
is :mod:`ledrec.simulate.world`); item metadata to show items by (:mod:`ledrec.data.items`: ``ItemTable``,
``read_items``)."""

PROTOCOLS = ("strong", "bars", "time")  # strong generalization (Mult-VAE), BARS's fixed files, a cut by time
