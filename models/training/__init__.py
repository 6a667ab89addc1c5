"""Tools that make the shipped models, beside the product code that loads them.

``train_embedded`` trains the ``embedded`` model on the procedural ``catalog_domain``
(``recipe``: the settings and parts; ``stages``: the training; ``export``: the folder and its
manifest); ``build_tiny_random`` builds the random-weight ``embedded-tiny`` stand-in. They import
torch and diffusers at the top; the product never imports this package.
"""
