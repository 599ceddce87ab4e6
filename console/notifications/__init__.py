"""Telling people what happened to change requests: email to each person (as they choose)
and, when configured, a signed JSON webhook for the workspace."""
