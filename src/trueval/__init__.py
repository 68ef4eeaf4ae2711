"""trueval: a Hydra + Lightning template in which a leaky evaluation cannot happen silently."""

__version__ = "0.1.0"
