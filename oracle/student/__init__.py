"""Implementations under test: the interface, its template, adapters, isolation, diagnosis, grading."""
