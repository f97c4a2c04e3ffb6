"""Search for single OE images (the paper's Algorithm 1, Tables 3-5): evolution and pure random search.

A search is one job: ``python -m oe_ad.search experiment=table3-cifar10 method=hsc normal_class=0``. Its fitness
is pluggable (``search.fitness``, see :mod:`oe_ad.search.fitness`); its state is saved after every generation
and a rerun of the same command continues from there.
"""

# The search algorithms by name (``search.algorithm``): what the schema offers and what ``search.job`` runs.
ALGORITHMS = {"evolution": "oe_ad.search.evolution.evolve", "random": "oe_ad.search.random_search.random_search"}
