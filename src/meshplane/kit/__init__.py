"""Generic helpers with no mesh meaning: the injectable clock and id factory.

Layer 0: imports nothing from meshplane. Collaborators that tests must control
(time, randomness) are defined here so every layer can accept them as
parameters instead of reaching for globals.
"""
