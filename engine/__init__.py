"""leadflow's engine: process specs, rules, the state machine, persistence and reports.

Integrators use ``engine.Engine``; see docs/api.md.
"""
