"""Where the catalog's files live: the local disk (``local``) or S3-compatible object storage
(``s3``), chosen by ``FILES_URL``; with a host's disk cache in front of a remote store.

Everything above this package sees one ``Files`` (``files.py``): a file's bytes as a ``Source``
the delivery layer sends, whatever holds them.
"""
