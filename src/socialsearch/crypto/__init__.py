"""The crypto room: everything a security reviewer reads, and nothing else.

* :mod:`.keys` — the keystore: the pseudonymisation secret, the custodian's and the
  municipalities' key pairs, rotation, export of the hub's part;
* :mod:`.pseudonyms` — keyed pseudonyms (HMAC-SHA256, hashed once per distinct value);
* :mod:`.recipients` — pseudonyms scoped to one receiving municipality;
* :mod:`.vault` — values sealed for the key custodian (AES-SIV under an X25519-sealed data key);
* ``_native`` — the Rust kernels behind them (batch HMAC, AES-SIV over whole Arrow columns).

Only standard constructions from maintained libraries (``cryptography``, RustCrypto), each with
published known-answer vectors in the tests.
"""
