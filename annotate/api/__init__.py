"""The REST API of the annotate app (DESIGN §6): thin DRF views over annotate.services."""
