"""Notes chapter 8: Generative models.

The registry reads ``TITLE`` and ``EXPERIMENTS`` (in notes order) from here.
"""

TITLE = "Generative models"

EXPERIMENTS = [
]
