"""Data versioning, lineage and validation.

Content-addressed storage of files and folders (`cache`, `tree`, `workspace`,
`pointer`), transfer to a remote (`remote`), the dataset registry and lineage
(`service`), reproducible splits (`split`) and validation suites (`validation`).
"""
