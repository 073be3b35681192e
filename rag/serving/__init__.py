"""Serving: the background threads of a server process. ``reload`` follows the store (every worker polls
what its store serves), ``rebuild`` runs the builds a store asks for (the file store's builds, the database
store's embedding jobs). Imports from index only."""
