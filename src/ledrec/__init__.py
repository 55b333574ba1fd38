"""ledrec: the LED recommender (Lightweight Encoder-Decoder, Koch et al., Criteo) from events to serving."""

__version__ = "0.1.0"
