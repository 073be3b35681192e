"""Speed and scale benchmarks of forum-qa: ``python -m bench`` (``make bench``); see bench/__main__.py."""
