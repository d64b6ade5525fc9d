"""The source station: it already holds identities, so it validates, resolves and pseudonymises.

* :mod:`.extracts` — reading and validating the raw extracts (the input contract);
* :mod:`.resolution` — resolving people without a valid CPR number against the register;
* :mod:`.pipeline` — raw extracts → the minimised, pseudonymised hub extract for one week.
"""
