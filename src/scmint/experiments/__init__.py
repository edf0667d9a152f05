"""Runners of the project's reproduction studies (each a module with a ``main``)."""
