"""Generic helpers with no mesh meaning: the injectable clock, id factory and deadline timer.

Layer 0: imports nothing from meshplane. Collaborators that tests must control
(time, randomness) are defined here so every layer can accept them as
parameters instead of reaching for globals.
"""
