"""Closed-loop runner, operation counting, energy and latency models, and the Lava import fix."""
