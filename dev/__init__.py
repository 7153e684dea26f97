"""The repository's developer tooling, not part of the installed package (the wheel leaves it out): the
docs generator (``docgen``, run by ``tools/make_docs.py``). It imports ``mdistiller_ddkd``, never the reverse."""
