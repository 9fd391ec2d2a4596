"""Reads shaped for the pages and endpoints that serve them (lists, counts).

Views and viewsets ask a selector for their rows instead of composing
querysets themselves, so each list's query — and the index it relies on — is
in one place.
"""
