"""Runnable demos of modelyard; ``modelyard demo`` runs the quickstart."""
