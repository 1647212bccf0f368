"""Metrics, logging and health checks shared by every Ordinaut process."""
