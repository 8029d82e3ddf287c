"""Everything decided before a model runs: spec i of the plan as a pure function of (config, i)
(`plan`, `allocation`), speaker pools, ingested real recordings (`real_queries`), the prompts folder, the label mix the card compares against
(`targets`), and what regeneration and top-up write again (`regenerate`, `topup`: they read the
finished chunk outputs through the store's work layout).

May import: core/, records/, config/, store/, weights/.
"""
