"""The reliability suite (issue 7): the operator as a separate process, killed, faulted and starved.

See docs/reliability.md for what is measured and the command that produced the figures.
"""
