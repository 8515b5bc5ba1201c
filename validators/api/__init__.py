"""The REST API of the validators app (DESIGN §6): thin DRF views over validators.services."""
