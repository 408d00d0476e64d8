"""The local Docker engine: one client for every caller, and the Debian/Ubuntu base image built on it."""
