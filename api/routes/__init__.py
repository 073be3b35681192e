"""The HTTP routes, one module per resource; each route is a thin call into :mod:`rag`."""
