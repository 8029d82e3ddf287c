"""The build config: one YAML file, validated by pydantic before anything heavy starts (`model`),
and the emotion-arc transition tables it validates (`arcs`).

May import: core/, records/.
"""
